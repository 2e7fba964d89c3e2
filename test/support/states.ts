// Test support: waits for a SourceRegistry state that satisfies a condition, with what was seen when none did.

import type { MeshState, SourceRegistry } from '../../src/controlplane/sources/registry.js';

export interface StateWatch {
  /** The latest state (the registry's current one). */
  readonly last: () => MeshState;
  /**
   * Resolves with the current state if it satisfies `pred`, else with the next one that does; rejects after
   * `timeoutMs` naming `what` and describing the last state.
   */
  readonly until: (what: string, pred: (s: MeshState) => boolean, timeoutMs?: number) => Promise<MeshState>;
  readonly stop: () => void;
}

/** Follows `registry` (started or not); `describe` renders a state for failure messages. */
export function watchStates(registry: SourceRegistry, describe: (s: MeshState) => string): StateWatch {
  const waiters = new Set<{ pred: (s: MeshState) => boolean; resolve: (s: MeshState) => void }>();
  let latest: MeshState | undefined;
  const unsubscribe = registry.subscribe((s) => {
    latest = s;
    for (const w of [...waiters]) {
      if (w.pred(s)) {
        waiters.delete(w);
        w.resolve(s);
      }
    }
  });
  const current = (): MeshState | undefined => {
    try {
      return registry.state;
    } catch {
      return latest;
    }
  };
  return {
    last: () => {
      const s = current();
      if (s === undefined) throw new Error('the registry has no state yet');
      return s;
    },
    until: (what, pred, timeoutMs = 10_000) => {
      const now = current();
      if (now !== undefined && pred(now)) return Promise.resolve(now);
      return new Promise((resolve, reject) => {
        const w = {
          pred,
          resolve: (s: MeshState) => {
            clearTimeout(timer);
            resolve(s);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(w);
          const s = current();
          reject(
            new Error(`no state with ${what} within ${timeoutMs} ms; last: ${s ? describe(s) : 'none'}`),
          );
        }, timeoutMs);
        waiters.add(w);
      });
    },
    stop: () => {
      unsubscribe();
      waiters.clear();
    },
  };
}
