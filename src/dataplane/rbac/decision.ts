// One RBAC filter's decision, shared by the HTTP and the network filter: shadow rules counted and logged, then
// the enforced rules, whose denial names the policy that made it.

import type { RbacRulesConfig } from '../../config/model.js';
import type { Logger } from '../observe/log.js';
import { deniedDetails, policyLabel, RbacEngine, type RbacInput } from './engine.js';
import type { RbacStats } from './stats.js';

/** Says what was decided on, for debug log lines; called only when debug logging is on. */
export type Describe = () => Record<string, unknown>;

export class RbacDecider {
  private readonly enforced: RbacEngine | undefined;
  private readonly shadow: RbacEngine | undefined;

  constructor(
    /** Names the filter in log lines: `rbac "envoy.filters.http.rbac" of http.inbound`. */
    private readonly what: string,
    rules: RbacRulesConfig | undefined,
    shadowRules: RbacRulesConfig | undefined,
    private readonly stats: RbacStats,
    private readonly logger: Logger,
  ) {
    this.enforced = rules && new RbacEngine(rules);
    this.shadow = shadowRules && new RbacEngine(shadowRules);
  }

  /**
   * Undefined lets the request or connection through; otherwise it is denied, and the result is Envoy's
   * response code details for it (`rbac_access_denied_matched_policy[<name>]`). Without enforced rules
   * everything passes, as in Envoy.
   */
  decide(input: RbacInput, describe: Describe): string | undefined {
    const debug = this.logger.enabled('debug');
    if (this.shadow !== undefined) {
      const matched = this.shadow.match(input);
      const allowed = this.shadow.allows(matched);
      this.stats.count(true, allowed, matched);
      if (debug) this.log(`shadow ${allowed ? 'allowed' : 'denied'}`, matched, describe);
    }
    const engine = this.enforced;
    if (engine === undefined) return undefined;
    const matched = engine.match(input);
    const allowed = engine.allows(matched);
    this.stats.count(false, allowed, matched);
    if (allowed) {
      if (debug) this.log('enforced allowed', matched, describe);
      return undefined;
    }
    if (debug) this.log('enforced denied', matched, describe);
    return deniedDetails(matched);
  }

  private log(verdict: string, matched: string | undefined, describe: Describe): void {
    this.logger.debug(`${this.what}: ${verdict}, matched policy ${policyLabel(matched)}`, describe());
  }
}
