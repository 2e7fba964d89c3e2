// Compiles an Envoy %START_TIME(fmt)% strftime-style format once into a function of epoch milliseconds (UTC).

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

type Piece = string | ((d: Date, ms: number) => string);

/**
 * Supported: %Y %y %m %d %e %H %M %S %j %a %b %T %F %z %Z %s (epoch seconds), %1f..%9f and %f (fraction of the
 * second, %f = 9 digits), %E3S (seconds with milliseconds, Envoy's default uses it) and %%. Any other
 * specifier is printed as written, as strftime implementations do.
 */
export function compileStartTimeFormat(fmt: string): (epochMs: number) => string {
  const pieces: Piece[] = [];
  let literal = '';
  const push = (p: Piece): void => {
    if (literal !== '') pieces.push(literal);
    literal = '';
    pieces.push(p);
  };
  for (let i = 0; i < fmt.length; i++) {
    const ch = fmt[i]!;
    if (ch !== '%' || i + 1 >= fmt.length) {
      literal += ch;
      continue;
    }
    const next = fmt[i + 1]!;
    const frac = /^([1-9])f/.exec(fmt.slice(i + 1, i + 3));
    if (frac) {
      const digits = Number(frac[1]);
      push((_d, ms) => fraction(ms, digits));
      i += 2;
      continue;
    }
    if (fmt.startsWith('E3S', i + 1)) {
      push((d, ms) => `${pad2(d.getUTCSeconds())}.${fraction(ms, 3)}`);
      i += 3;
      continue;
    }
    const spec = SPECIFIERS[next];
    if (next === '%') literal += '%';
    else if (spec) push(spec);
    else literal += `%${next}`;
    i += 1;
  }
  if (literal !== '') pieces.push(literal);
  return (epochMs) => {
    const d = new Date(epochMs);
    let out = '';
    for (const p of pieces) out += typeof p === 'string' ? p : p(d, epochMs);
    return out;
  };
}

const SPECIFIERS: Readonly<Record<string, (d: Date, ms: number) => string>> = {
  Y: (d) => String(d.getUTCFullYear()),
  y: (d) => pad2(d.getUTCFullYear() % 100),
  m: (d) => pad2(d.getUTCMonth() + 1),
  d: (d) => pad2(d.getUTCDate()),
  e: (d) => String(d.getUTCDate()).padStart(2, ' '),
  H: (d) => pad2(d.getUTCHours()),
  M: (d) => pad2(d.getUTCMinutes()),
  S: (d) => pad2(d.getUTCSeconds()),
  j: (d) => String(dayOfYear(d)).padStart(3, '0'),
  a: (d) => DAYS[d.getUTCDay()]!,
  b: (d) => MONTHS[d.getUTCMonth()]!,
  T: (d) => `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}`,
  F: (d) => `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}`,
  z: () => '+0000',
  Z: () => 'UTC',
  s: (_d, ms) => String(Math.floor(ms / 1000)),
  f: (_d, ms) => fraction(ms, 9),
};

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** The fraction of the second to `digits` digits; milliseconds are the resolution, so the rest is zeros. */
function fraction(epochMs: number, digits: number): string {
  const millis = String(((Math.floor(epochMs) % 1000) + 1000) % 1000).padStart(3, '0');
  return digits <= 3 ? millis.slice(0, digits) : millis.padEnd(digits, '0');
}

function dayOfYear(d: Date): number {
  return Math.floor((d.getTime() - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1;
}
