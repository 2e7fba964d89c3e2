// Lifetimes as people write them on a command line: "24h", "90m", "1h30m", "45s".

const UNITS: Readonly<Record<string, number>> = { h: 3600_000, m: 60_000, s: 1000 };

/** Milliseconds of `text`; undefined when it is not one or more `<number><h|m|s>`. */
export function parseLifetime(text: string): number | undefined {
  const t = text.trim();
  if (!/^(\d+(\.\d+)?[hms])+$/.test(t)) return undefined;
  let ms = 0;
  for (const m of t.matchAll(/(\d+(?:\.\d+)?)([hms])/g)) ms += Number(m[1]) * UNITS[m[2]!]!;
  return Math.round(ms);
}

/** "24h", "1h30m", "90s": the shortest exact form, for messages. */
export function formatLifetime(ms: number): string {
  let s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return `${h > 0 ? `${h}h` : ''}${m > 0 ? `${m}m` : ''}${s > 0 || (h === 0 && m === 0) ? `${s}s` : ''}`;
}
