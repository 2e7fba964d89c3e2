// The routing part of the validated configuration (config/route.ts, route_action.ts make it): route tables,
// virtual hosts, matches, actions, header mutations.

import type { UpgradeConfig } from '../model.js';

export type HeaderAppendAction =
  | 'APPEND_IF_EXISTS_OR_ADD'
  | 'ADD_IF_ABSENT'
  | 'OVERWRITE_IF_EXISTS_OR_ADD'
  | 'OVERWRITE_IF_EXISTS';

export interface HeaderValueOption {
  /** Lower-cased header name. */
  readonly key: string;
  /** May contain %VARIABLE% substitutions (e.g. %DOWNSTREAM_REMOTE_ADDRESS%). */
  readonly value: string;
  readonly appendAction: HeaderAppendAction;
  readonly keepEmptyValue: boolean;
}

/** Header mutations shared by route config, virtual host, route and weighted cluster levels. */
export interface HeaderMutations {
  readonly requestHeadersToAdd: readonly HeaderValueOption[];
  /** Lower-cased. */
  readonly requestHeadersToRemove: readonly string[];
  readonly responseHeadersToAdd: readonly HeaderValueOption[];
  readonly responseHeadersToRemove: readonly string[];
}

export interface RouteConfig extends HeaderMutations {
  readonly name: string;
  readonly virtualHosts: readonly VirtualHostConfig[];
}

export interface VirtualHostConfig extends HeaderMutations {
  readonly name: string;
  /** Lower-cased as written: "example.com", "*.example.com", "example.*", "*", each optionally with ":port". */
  readonly domains: readonly string[];
  readonly routes: readonly RouteEntryConfig[];
  readonly retryPolicy: RetryPolicyConfig | undefined;
}

export interface RouteEntryConfig extends HeaderMutations {
  readonly name: string;
  readonly match: RouteMatchConfig;
  readonly action: RouteActionConfig;
}

export type PathMatchConfig =
  | { readonly kind: 'prefix'; readonly value: string }
  | { readonly kind: 'path'; readonly value: string }
  | { readonly kind: 'safe_regex'; readonly regex: string }
  | { readonly kind: 'path_separated_prefix'; readonly value: string };

export interface RouteMatchConfig {
  readonly path: PathMatchConfig;
  /** Default true. */
  readonly caseSensitive: boolean;
  readonly headers: readonly HeaderMatcherConfig[];
  readonly queryParameters: readonly QueryParameterMatcherConfig[];
}

export interface StringMatcherConfig {
  readonly kind: 'exact' | 'prefix' | 'suffix' | 'contains' | 'safe_regex';
  /** The literal, or the RE2-style regex source for safe_regex (JavaScript syntax, full match). */
  readonly value: string;
  readonly ignoreCase: boolean;
}

export type HeaderMatchSpec =
  | { readonly kind: 'string'; readonly matcher: StringMatcherConfig }
  | { readonly kind: 'present'; readonly present: boolean }
  | { readonly kind: 'range'; readonly start: number; readonly end: number };

export interface HeaderMatcherConfig {
  /** Lower-cased header name (":authority", ":method", ":path" and ":scheme" are allowed). */
  readonly name: string;
  readonly spec: HeaderMatchSpec;
  readonly invertMatch: boolean;
  readonly treatMissingHeaderAsEmpty: boolean;
}

export interface QueryParameterMatcherConfig {
  readonly name: string;
  /** undefined string matcher with present=true means "present". */
  readonly spec:
    | { readonly kind: 'string'; readonly matcher: StringMatcherConfig }
    | { readonly kind: 'present'; readonly present: boolean };
}

export type RouteActionConfig =
  | { readonly kind: 'route'; readonly route: ForwardActionConfig }
  | { readonly kind: 'direct_response'; readonly status: number; readonly body: string | undefined }
  | { readonly kind: 'redirect'; readonly redirect: RedirectActionConfig };

export interface WeightedClusterConfig extends HeaderMutations {
  readonly name: string;
  readonly weight: number;
}

export interface ForwardActionConfig {
  /** One entry of weight 1 for `cluster`; several for `weighted_clusters`. */
  readonly clusters: readonly WeightedClusterConfig[];
  readonly totalWeight: number;
  readonly prefixRewrite: string | undefined;
  readonly regexRewrite: { readonly pattern: string; readonly substitution: string } | undefined;
  readonly hostRewriteLiteral: string | undefined;
  /** Default 15000; 0 disables. */
  readonly timeoutMs: number;
  /** idle_timeout on the route: 0 = use the HCM stream idle timeout. */
  readonly idleTimeoutMs: number;
  /** The largest grpc-timeout honoured (max_grpc_timeout / grpc_timeout_header_max); 0 = no cap. */
  readonly grpcTimeoutMaxMs: number;
  /** Subtracted from grpc-timeout (grpc_timeout_offset / grpc_timeout_header_offset). */
  readonly grpcTimeoutOffsetMs: number;
  /** The route's policy, else the virtual host's; undefined = no retries. */
  readonly retryPolicy: RetryPolicyConfig | undefined;
  readonly hashPolicy: readonly HashPolicyConfig[];
  /** Route-level upgrade_configs: each entry overrides the HCM's for its upgrade type. */
  readonly upgradeConfigs: readonly UpgradeConfig[];
}

export interface RetryPolicyConfig {
  /** e.g. "5xx", "gateway-error", "connect-failure", "reset", "retriable-status-codes", "refused-stream". */
  readonly retryOn: readonly string[];
  /** Default 1. */
  readonly numRetries: number;
  /** 0 = no per-try timeout. */
  readonly perTryTimeoutMs: number;
  readonly retriableStatusCodes: readonly number[];
  /** Default base 25 ms, max 10 × base. */
  readonly backOff: { readonly baseIntervalMs: number; readonly maxIntervalMs: number };
}

export type HashPolicyConfig =
  | { readonly kind: 'header'; readonly headerName: string; readonly terminal: boolean }
  | {
      readonly kind: 'cookie';
      readonly name: string;
      readonly ttlMs: number | undefined;
      readonly path: string | undefined;
      readonly terminal: boolean;
    }
  | { readonly kind: 'source_ip'; readonly terminal: boolean }
  | { readonly kind: 'query_parameter'; readonly name: string; readonly terminal: boolean };

export interface RedirectActionConfig {
  /** "https" for https_redirect, or scheme_redirect. */
  readonly scheme: string | undefined;
  readonly host: string | undefined;
  readonly port: number | undefined;
  readonly path: string | undefined;
  readonly prefixRewrite: string | undefined;
  /** 301 (MOVED_PERMANENTLY, default), 302, 303, 307, 308. */
  readonly responseCode: number;
  readonly stripQuery: boolean;
}
