// The outcome of translating configuration: a typed value, or every error found with its field path.

export interface ConfigError {
  /** Field path as written in the input, e.g. `static_resources.clusters[1].lb_policy`; "" for the whole input. */
  readonly path: string;
  readonly message: string;
}

export type ValidationResult<T> = { ok: true; value: T } | { ok: false; errors: ConfigError[] };

/** One line per error: `static_resources.clusters[1].lb_policy: unsupported value "FOO"`. */
export function formatErrors(errors: readonly ConfigError[]): string {
  return errors
    .map((e) => `${e.path === '' ? '(root)' : e.path}: ${e.message.replace(/[\r\n]+/g, ' ')}`)
    .join('\n');
}
