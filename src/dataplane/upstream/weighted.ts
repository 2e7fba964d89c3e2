// Picks one entry of a weighted list (weighted_clusters) in proportion to its weight.

export function pickWeighted<T extends { readonly weight: number }>(
  items: readonly T[],
  total: number,
  random: () => number = Math.random,
): T {
  if (items.length === 1) return items[0]!;
  let r = random() * total;
  for (const it of items) {
    r -= it.weight;
    if (r < 0) return it;
  }
  return items[items.length - 1]!;
}
