// MAGLEV: Envoy's weighted Maglev lookup table (Eisenbud et al., NSDI 2016), looked up at hash mod table size.

import type { ClusterConfig } from '../../../config/model.js';
import { mod64, toWords, xxhash64Words } from './hash.js';
import { lbWeight, type Random, randomIndex } from './level.js';
import type { LbContext, LbHost, LoadBalancer } from './types.js';

/** Envoy's default table_size. */
export const DEFAULT_MAGLEV_TABLE_SIZE = 65537;

function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

/**
 * Fills a table of `size` slots with host indices. Hosts are taken in key order (so the table does not depend on the
 * order of the endpoint list); host i's preference list is offset_i + j * skip_i mod size with
 * offset = xxhash64(key, 0) mod size and skip = xxhash64(key, 1) mod (size - 1) + 1. In round r a host claims its next
 * free preferred slot when r * w_i >= claims_i * maxWeight, so claims are proportional to weight.
 */
export function buildMaglevTable(
  keys: readonly string[],
  weights: readonly number[],
  size: number,
): Uint32Array {
  if (!isPrime(size)) throw new Error(`maglev: table_size ${size} is not a prime number`);
  const n = keys.length;
  const table = new Uint32Array(size);
  if (n === 0) return table;
  const order = keys
    .map((_, i) => i)
    .sort((a, b) => (keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : a - b));
  const position = new Float64Array(n);
  const skip = new Float64Array(n);
  const claims = new Float64Array(n);
  const words = new Uint32Array(2);
  let maxWeight = 0;
  for (let i = 0; i < n; i++) {
    xxhash64Words(keys[i]!, 0, words);
    position[i] = mod64(words[0]!, words[1]!, size);
    xxhash64Words(keys[i]!, 1, words);
    skip[i] = mod64(words[0]!, words[1]!, size - 1) + 1;
    maxWeight = Math.max(maxWeight, weights[i]!);
  }
  const EMPTY = 0xffffffff;
  table.fill(EMPTY);
  let filled = 0;
  for (let round = 1; filled < size; round++) {
    for (let k = 0; k < n && filled < size; k++) {
      const i = order[k]!;
      if (round * weights[i]! < claims[i]! * maxWeight) continue;
      claims[i] = claims[i]! + 1;
      const step = skip[i]!;
      let c = position[i]!;
      while (table[c] !== EMPTY) {
        c += step;
        if (c >= size) c -= size;
      }
      table[c] = i;
      c += step;
      position[i] = c >= size ? c - size : c;
      filled++;
    }
  }
  return table;
}

class Maglev<H extends LbHost> implements LoadBalancer<H> {
  private readonly table: Uint32Array;
  private readonly key = new Uint32Array(2);

  constructor(
    private readonly hosts: readonly H[],
    tableSize: number,
    private readonly random: Random,
  ) {
    this.table = buildMaglevTable(
      hosts.map((h) => h.key),
      hosts.map((h) => lbWeight(h)),
      tableSize,
    );
  }

  /** table[hash mod size]; a random slot without a hash. */
  chooseHost(ctx: LbContext): H | undefined {
    const size = this.table.length;
    let slot: number;
    if (ctx.hashKey === undefined) {
      slot = randomIndex(this.random, size);
    } else {
      toWords(ctx.hashKey, this.key);
      slot = mod64(this.key[0]!, this.key[1]!, size);
    }
    return this.hosts[this.table[slot]!];
  }
}

export function createMaglevLevel<H extends LbHost>(
  hosts: readonly H[],
  config: ClusterConfig,
  random: Random,
): LoadBalancer<H> {
  return new Maglev(hosts, config.maglev.tableSize, random);
}
