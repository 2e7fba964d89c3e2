// A request's headers as one flat [name, value, ...] list with lower-cased names: cheap to scan, mutate and send.

export type HeaderList = string[];

export function headerGet(h: readonly string[], name: string): string | undefined {
  let out: string | undefined;
  for (let i = 0; i < h.length; i += 2) {
    if (h[i] === name) out = out === undefined ? h[i + 1] : `${out},${h[i + 1]}`;
  }
  return out;
}

export function headerHas(h: readonly string[], name: string): boolean {
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) return true;
  return false;
}

export function headerRemove(h: HeaderList, name: string): void {
  let w = 0;
  for (let r = 0; r < h.length; r += 2) {
    if (h[r] !== name) {
      h[w] = h[r]!;
      h[w + 1] = h[r + 1]!;
      w += 2;
    }
  }
  h.length = w;
}

export function headerSet(h: HeaderList, name: string, value: string): void {
  headerRemove(h, name);
  h.push(name, value);
}

/** The first value of `name`, or undefined. */
export function headerFirst(h: readonly string[], name: string): string | undefined {
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) return h[i + 1];
  return undefined;
}

/** The list as an object (a repeated header's values joined with ","), as access logs read request headers. */
export function headersRecord(list: readonly string[]): Record<string, string> {
  const o: Record<string, string> = {};
  for (let i = 0; i < list.length; i += 2) {
    const k = list[i]!;
    o[k] = o[k] === undefined ? list[i + 1]! : `${o[k]},${list[i + 1]}`;
  }
  return o;
}
