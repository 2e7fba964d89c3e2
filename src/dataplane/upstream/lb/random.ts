// RANDOM: a uniform pick, weighted by load_balancing_weight when weights differ.

import type { ClusterConfig } from '../../../config/model.js';
import { allWeightsEqual, lbWeight, type Random, randomIndex } from './level.js';
import type { LbHost, LoadBalancer } from './types.js';

class UniformRandom<H extends LbHost> implements LoadBalancer<H> {
  constructor(
    private readonly hosts: readonly H[],
    private readonly random: Random,
  ) {}

  chooseHost(): H | undefined {
    return this.hosts[randomIndex(this.random, this.hosts.length)];
  }
}

/** Draws a point in [0, totalWeight) and binary-searches the running sums of the weights. */
class WeightedRandom<H extends LbHost> implements LoadBalancer<H> {
  /** ends[i] = weight_0 + ... + weight_i. */
  private readonly ends: Float64Array;

  constructor(
    private readonly hosts: readonly H[],
    private readonly random: Random,
  ) {
    this.ends = new Float64Array(hosts.length);
    let sum = 0;
    for (let i = 0; i < hosts.length; i++) {
      sum += lbWeight(hosts[i]!);
      this.ends[i] = sum;
    }
  }

  chooseHost(): H | undefined {
    const ends = this.ends;
    const point = this.random() * ends[ends.length - 1]!;
    let lo = 0;
    let hi = ends.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ends[mid]! <= point) lo = mid + 1;
      else hi = mid;
    }
    return this.hosts[lo];
  }
}

export function createRandomLevel<H extends LbHost>(
  hosts: readonly H[],
  _config: ClusterConfig,
  random: Random,
): LoadBalancer<H> {
  return allWeightsEqual(hosts) ? new UniformRandom(hosts, random) : new WeightedRandom(hosts, random);
}
