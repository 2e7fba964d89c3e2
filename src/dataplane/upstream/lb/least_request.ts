// LEAST_REQUEST: power of N choices on active requests, or an EDF schedule on weight / (active + 1) when weighted.

import type { ClusterConfig } from '../../../config/model.js';
import { EdfHeap } from './edf.js';
import { allWeightsEqual, lbWeight, type Random, randomIndex } from './level.js';
import type { LbHost, LoadBalancer } from './types.js';

/** Envoy's default; choice_count below 2 would not compare anything. */
const DEFAULT_CHOICE_COUNT = 2;

/** Deadlines are rebased when the clock passes this, so 1 / weight increments keep their precision. */
const REBASE_AT = 2 ** 20;

/** Samples `choiceCount` hosts (with replacement) and keeps the one with the fewest active requests (first wins ties). */
class PowerOfChoices<H extends LbHost> implements LoadBalancer<H> {
  constructor(
    private readonly hosts: readonly H[],
    private readonly choiceCount: number,
    private readonly random: Random,
  ) {}

  chooseHost(): H | undefined {
    const hosts = this.hosts;
    const n = hosts.length;
    let best = hosts[randomIndex(this.random, n)]!;
    for (let c = 1; c < this.choiceCount; c++) {
      const sampled = hosts[randomIndex(this.random, n)]!;
      if (sampled.activeRequests < best.activeRequests) best = sampled;
    }
    return best;
  }
}

/**
 * Envoy's weighted least request: an EDF schedule in which a host, when picked, is rescheduled at
 * now + 1 / effectiveWeight with effectiveWeight = weight / (activeRequests + 1)^bias and bias 1.0. A busy host's next
 * turn is pushed back in proportion to its load; its current deadline is kept until it comes up.
 */
class WeightedLeastRequest<H extends LbHost> implements LoadBalancer<H> {
  private readonly weights: Float64Array;
  private readonly edf: EdfHeap;

  constructor(
    private readonly hosts: readonly H[],
    random: Random,
  ) {
    const n = hosts.length;
    this.weights = new Float64Array(n);
    this.edf = new EdfHeap(n);
    for (let i = 0; i < n; i++) {
      const w = lbWeight(hosts[i]!);
      this.weights[i] = w;
      this.edf.deadline[i] = this.interval(i);
    }
    this.edf.rebuild();
    for (let skip = randomIndex(random, n); skip > 0; skip--) this.advance();
  }

  chooseHost(): H | undefined {
    return this.hosts[this.advance()];
  }

  private interval(i: number): number {
    const active = this.hosts[i]!.activeRequests;
    return (active > 0 ? active + 1 : 1) / this.weights[i]!;
  }

  private advance(): number {
    const edf = this.edf;
    const i = edf.top();
    const now = edf.deadline[i]!;
    edf.replaceTop(now + this.interval(i));
    if (now > REBASE_AT) edf.shift(now);
    return i;
  }
}

export function createLeastRequestLevel<H extends LbHost>(
  hosts: readonly H[],
  config: ClusterConfig,
  random: Random,
): LoadBalancer<H> {
  if (!allWeightsEqual(hosts)) return new WeightedLeastRequest(hosts, random);
  const configured = Math.floor(config.leastRequest.choiceCount);
  const choiceCount = configured >= 1 ? configured : DEFAULT_CHOICE_COUNT;
  return new PowerOfChoices(hosts, choiceCount, random);
}
