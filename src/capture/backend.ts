// What every way of installing the capture rules (iptables, iptables-legacy, nft) provides to `remora iptables`.

import type { BackendName } from './options.js';
import type { Family, RuleSet } from './rules.js';

/** A script and the command it is fed to on stdin. */
export interface Script {
  readonly tool: string;
  readonly args: readonly string[];
  readonly input: string;
}

export interface CaptureBackend {
  readonly name: BackendName;
  /** True when one table holds both families, so that apply replaces the IPv6 rules even when IPv6 is now off. */
  readonly dualStack: boolean;
  /** The tools apply and clean run for these families: checked before anything is changed. */
  tools(families: readonly Family[]): string[];
  /** What apply feeds in a network namespace where no Remora rules are installed (what `print` shows). */
  scripts(rules: RuleSet): Script[];
  /** True when the installed rules record that Remora added ::6 to lo (the empty REMORA_LO6_ADDED chain). */
  recordsLo6(): Promise<boolean>;
  /**
   * Replaces whatever Remora rules are installed with `rules`: each table is changed atomically, so that a second
   * apply leaves one set of rules and never a moment without capture. Throws REMORA_ERR_CAPTURE_LOAD when a tool
   * refuses a script (with its stderr); the tables it had already changed stay changed (the caller cleans up).
   */
  apply(rules: RuleSet): Promise<void>;
  /** Removes Remora's chains and the jumps to them (nothing else) in these families; false when none were there. */
  clean(families: readonly Family[]): Promise<boolean>;
}
