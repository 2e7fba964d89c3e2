// The RBAC part of the validated configuration (config/rbac.ts makes it): policies, permissions, principals.

import type { CidrRangeConfig, HeaderMatcherConfig, StringMatcherConfig } from '../model.js';

/** envoy.config.rbac.v3.RBAC: the policies and what a match means. */
export interface RbacRulesConfig {
  /** ALLOW: only a request some policy matches is allowed. DENY: a request some policy matches is denied. */
  readonly action: 'ALLOW' | 'DENY';
  /** Sorted by name (byte order), the order Envoy evaluates them in: the first match names the decision. */
  readonly policies: readonly RbacPolicyConfig[];
}

/** A policy matches when one of its permissions and one of its principals match. */
export interface RbacPolicyConfig {
  readonly name: string;
  readonly permissions: readonly RbacPermissionConfig[];
  readonly principals: readonly RbacPrincipalConfig[];
}

/** Envoy's PathMatcher: the request path without query and fragment, against a StringMatcher. */
export type RbacPathConfig = StringMatcherConfig;

/** A Permission: what the request does (where it goes, what it asks for). */
export type RbacPermissionConfig =
  | { readonly kind: 'any' }
  | { readonly kind: 'and' | 'or'; readonly rules: readonly RbacPermissionConfig[] }
  | { readonly kind: 'not'; readonly rule: RbacPermissionConfig }
  | { readonly kind: 'header'; readonly header: HeaderMatcherConfig }
  | { readonly kind: 'url_path'; readonly path: RbacPathConfig }
  /** The connection's destination (its original destination when restored): local address and port. */
  | { readonly kind: 'destination_ip'; readonly range: CidrRangeConfig }
  | { readonly kind: 'destination_port'; readonly port: number }
  /** Ports in [start, end). */
  | { readonly kind: 'destination_port_range'; readonly start: number; readonly end: number }
  /** The SNI a listener filter (tls_inspector) read; "" when none. */
  | { readonly kind: 'requested_server_name'; readonly matcher: StringMatcherConfig };

/** A Principal: who the downstream is. */
export type RbacPrincipalConfig =
  | { readonly kind: 'any' }
  | { readonly kind: 'and' | 'or'; readonly ids: readonly RbacPrincipalConfig[] }
  | { readonly kind: 'not'; readonly id: RbacPrincipalConfig }
  /**
   * A TLS connection; with a matcher, one of the verified peer certificate's URI SANs, else DNS SANs, else its
   * subject (RFC 2253) matches. Undefined matcher: any TLS connection.
   */
  | { readonly kind: 'authenticated'; readonly principalName: StringMatcherConfig | undefined }
  /** The peer of the connection (source_ip, deprecated, means the same without a PROXY protocol filter). */
  | { readonly kind: 'direct_remote_ip'; readonly range: CidrRangeConfig }
  /** The downstream address as the HCM derives it (x-forwarded-for when use_remote_address is false). */
  | { readonly kind: 'remote_ip'; readonly range: CidrRangeConfig }
  | { readonly kind: 'header'; readonly header: HeaderMatcherConfig }
  | { readonly kind: 'url_path'; readonly path: RbacPathConfig };

/** The typed_config of envoy.filters.http.rbac (extensions.filters.http.rbac.v3.RBAC). */
export interface HttpRbacConfig {
  /** Enforced; undefined: nothing is enforced (every request passes). */
  readonly rules: RbacRulesConfig | undefined;
  /** Evaluated and counted, never enforced. */
  readonly shadowRules: RbacRulesConfig | undefined;
  /** rules_stat_prefix: joins http.<stat_prefix>.rbac. and the counter names. */
  readonly rulesStatPrefix: string;
  readonly shadowRulesStatPrefix: string;
  /** track_per_rule_stats: counters per policy name as well. */
  readonly trackPerRuleStats: boolean;
}

/** The typed_config of envoy.filters.network.rbac (extensions.filters.network.rbac.v3.RBAC). */
export interface NetworkRbacConfig {
  /** The filter's name in the chain, for log lines. */
  readonly name: string;
  /** Used as written: the counters are <stat_prefix>rbac.allowed and so on. */
  readonly statPrefix: string;
  readonly rules: RbacRulesConfig | undefined;
  readonly shadowRules: RbacRulesConfig | undefined;
  readonly shadowRulesStatPrefix: string;
  /** Either way a connection is decided once (see docs/configuration.md: nothing a rule reads changes later). */
  readonly enforcementType: 'ONE_TIME_ON_FIRST_BYTE' | 'CONTINUOUS';
}
