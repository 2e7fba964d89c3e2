// `remora validate -c FILE`: every error with its field path and exit 1, or a one-line summary and exit 0.

import { loadBootstrapFile, summarize } from '../config/bootstrap.js';
import { formatErrors } from '../config/result.js';
import { checkTlsMaterial } from '../dataplane/tls/material.js';

export async function runValidate(file: string): Promise<number> {
  const { result } = await loadBootstrapFile(file);
  // A valid config may still name certificate files the proxy could not use: report them as the proxy would.
  const errors = result.ok ? checkTlsMaterial(result.value) : result.errors;
  if (!result.ok || errors.length > 0) {
    process.stderr.write(`${formatErrors(errors)}\n`);
    process.stderr.write(`${file}: ${errors.length} error${errors.length === 1 ? '' : 's'}\n`);
    return 1;
  }
  process.stdout.write(`${file}: ${summarize(result.value)}\n`);
  return 0;
}
