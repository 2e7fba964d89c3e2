// ROUND_ROBIN: plain rotation when weights are equal, else Envoy's earliest-deadline-first weighted schedule.

import type { ClusterConfig } from '../../../config/model.js';
import { EdfHeap } from './edf.js';
import { allWeightsEqual, lbWeight, type Random, randomIndex } from './level.js';
import type { LbHost, LoadBalancer } from './types.js';

/** Rotates through the hosts from a random start. */
class PlainRoundRobin<H extends LbHost> implements LoadBalancer<H> {
  private next: number;

  constructor(
    private readonly hosts: readonly H[],
    random: Random,
  ) {
    this.next = randomIndex(random, hosts.length);
  }

  chooseHost(): H | undefined {
    const i = this.next;
    this.next = i + 1 === this.hosts.length ? 0 : i + 1;
    return this.hosts[i];
  }
}

/**
 * Host i's k-th pick (k from 1) is due at k / weight_i; picks go in deadline order, equal deadlines by host order.
 * Deadlines are computed from the pick count rather than accumulated, so they are exact rationals rounded once and
 * the schedule is periodic: every totalWeight consecutive picks hold exactly weight_i picks of host i, interleaved
 * (weights 1:2:3 for A, B, C give C B C A B C). The counts restart at the end of each period to keep the numbers small.
 */
class WeightedRoundRobin<H extends LbHost> implements LoadBalancer<H> {
  private readonly weights: Float64Array;
  private readonly picks: Float64Array;
  private readonly edf: EdfHeap;
  private readonly period: number;
  private picksInPeriod = 0;

  constructor(
    private readonly hosts: readonly H[],
    random: Random,
  ) {
    const n = hosts.length;
    this.weights = new Float64Array(n);
    this.picks = new Float64Array(n);
    this.edf = new EdfHeap(n);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const w = lbWeight(hosts[i]!);
      this.weights[i] = w;
      total += w;
    }
    this.period = total;
    this.restartPeriod();
    // As Envoy does, start at a random point of the schedule so that proxies do not all begin on the same host.
    for (let skip = randomIndex(random, n); skip > 0; skip--) this.advance();
  }

  chooseHost(): H | undefined {
    return this.hosts[this.advance()];
  }

  private advance(): number {
    const i = this.edf.top();
    const k = this.picks[i]! + 1;
    this.picks[i] = k;
    this.edf.replaceTop((k + 1) / this.weights[i]!);
    if (++this.picksInPeriod === this.period) this.restartPeriod();
    return i;
  }

  private restartPeriod(): void {
    this.picksInPeriod = 0;
    this.picks.fill(0);
    for (let i = 0; i < this.weights.length; i++) this.edf.deadline[i] = 1 / this.weights[i]!;
    this.edf.rebuild();
  }
}

export function createRoundRobinLevel<H extends LbHost>(
  hosts: readonly H[],
  _config: ClusterConfig,
  random: Random,
): LoadBalancer<H> {
  return allWeightsEqual(hosts) ? new PlainRoundRobin(hosts, random) : new WeightedRoundRobin(hosts, random);
}
