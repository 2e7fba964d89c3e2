// `remora proxy --uid/--gid`: the proxy runs as its own user, whose connections the capture rules leave alone.

/** Switches the process to `uid`/`gid` (supplementary groups cleared); an error message when it cannot. */
export function dropPrivileges(uid: number | undefined, gid: number | undefined): string | undefined {
  if (uid === undefined && gid === undefined) return undefined;
  const current = { uid: process.getuid?.(), gid: process.getgid?.() };
  if (current.uid === undefined) return '--uid/--gid: this platform has no user ids';
  if ((uid === undefined || uid === current.uid) && (gid === undefined || gid === current.gid))
    return undefined;
  if (current.uid !== 0) {
    return `--uid/--gid: changing user needs root (running as uid ${current.uid}); start as root, or run as the proxy's user directly (setpriv --reuid ${uid ?? current.uid} --regid ${gid ?? current.gid} --clear-groups, or systemd User=/Group=)`;
  }
  try {
    // Group first: once the user id is no longer root, the group cannot change.
    if (gid !== undefined) {
      process.setgroups?.([gid]);
      process.setgid?.(gid);
    } else process.setgroups?.([]);
    if (uid !== undefined) process.setuid?.(uid);
  } catch (err) {
    return `--uid/--gid: cannot switch to uid ${uid ?? current.uid} gid ${gid ?? current.gid}: ${(err as Error).message}`;
  }
  return undefined;
}

/** A numeric user or group id given on the command line. */
export function parseId(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n > 0xfffffffe)
    throw new Error(`expected a numeric id, got "${value}"`);
  return n;
}
