// RING_HASH: Envoy's ketama-style consistent-hash ring of xxhash64("<host key>_<i>") points, weighted by replica count.

import type { ClusterConfig } from '../../../config/model.js';
import { toWords, xxhash64Words } from './hash.js';
import { lbWeight, type Random } from './level.js';
import type { LbContext, LbHost, LoadBalancer } from './types.js';

const TWO_POW_32 = 0x100000000;

/**
 * Number of ring points of each host, as Envoy lays them out: scale = min(ceil(minW * minimumRingSize) / minW,
 * maximumRingSize) where minW is the smallest normalized weight, so the lightest host gets a whole number (at least 1)
 * of points and the ring holds at least minimumRingSize; host i then takes points while a running count stays below
 * the running sum of scale * w_i.
 */
export function ringReplicas(
  weights: readonly number[],
  minimumRingSize: number,
  maximumRingSize: number,
): number[] {
  let sum = 0;
  let min = Number.POSITIVE_INFINITY;
  for (const w of weights) {
    sum += w;
    if (w < min) min = w;
  }
  const minNormalized = min / sum;
  const scale = Math.min(Math.ceil(minNormalized * minimumRingSize) / minNormalized, maximumRingSize);
  const counts: number[] = [];
  let current = 0;
  let target = 0;
  for (const w of weights) {
    target += (scale * w) / sum;
    let count = 0;
    while (current < target) {
      current++;
      count++;
    }
    counts.push(count);
  }
  return counts;
}

/** The ring as three parallel arrays sorted by 64-bit hash (hi word, then lo word). */
class RingHash<H extends LbHost> implements LoadBalancer<H> {
  private readonly hashHi: Uint32Array;
  private readonly hashLo: Uint32Array;
  private readonly owner: Uint32Array;
  private readonly key = new Uint32Array(2);

  constructor(
    private readonly hosts: readonly H[],
    minimumRingSize: number,
    maximumRingSize: number,
    private readonly random: Random,
  ) {
    const counts = ringReplicas(
      hosts.map((h) => lbWeight(h)),
      minimumRingSize,
      maximumRingSize,
    );
    let size = 0;
    for (const c of counts) size += c;
    const hi = new Uint32Array(size);
    const lo = new Uint32Array(size);
    const owner = new Uint32Array(size);
    const words = new Uint32Array(2);
    let p = 0;
    for (let h = 0; h < hosts.length; h++) {
      const prefix = `${hosts[h]!.key}_`;
      for (let i = 0; i < counts[h]!; i++, p++) {
        xxhash64Words(prefix + i, 0, words);
        hi[p] = words[0]!;
        lo[p] = words[1]!;
        owner[p] = h;
      }
    }
    const order = new Uint32Array(size);
    for (let i = 0; i < size; i++) order[i] = i;
    order.sort((a, b) => hi[a]! - hi[b]! || lo[a]! - lo[b]! || a - b);
    this.hashHi = new Uint32Array(size);
    this.hashLo = new Uint32Array(size);
    this.owner = new Uint32Array(size);
    for (let i = 0; i < size; i++) {
      const from = order[i]!;
      this.hashHi[i] = hi[from]!;
      this.hashLo[i] = lo[from]!;
      this.owner[i] = owner[from]!;
    }
  }

  /** The owner of the first point at or after the request's hash, wrapping to the first point; random without a hash. */
  chooseHost(ctx: LbContext): H | undefined {
    const n = this.owner.length;
    if (n === 0) return undefined;
    let keyHi: number;
    let keyLo: number;
    if (ctx.hashKey === undefined) {
      keyHi = Math.floor(this.random() * TWO_POW_32) >>> 0;
      keyLo = Math.floor(this.random() * TWO_POW_32) >>> 0;
    } else {
      toWords(ctx.hashKey, this.key);
      keyHi = this.key[0]!;
      keyLo = this.key[1]!;
    }
    const hashHi = this.hashHi;
    const hashLo = this.hashLo;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const h = hashHi[mid]!;
      if (h < keyHi || (h === keyHi && hashLo[mid]! < keyLo)) lo = mid + 1;
      else hi = mid;
    }
    return this.hosts[this.owner[lo === n ? 0 : lo]!];
  }
}

export function createRingHashLevel<H extends LbHost>(
  hosts: readonly H[],
  config: ClusterConfig,
  random: Random,
): LoadBalancer<H> {
  return new RingHash(hosts, config.ringHash.minimumRingSize, config.ringHash.maximumRingSize, random);
}
