// `remora validate -c FILE`: every error with its field path and exit 1, or a one-line summary and exit 0.

import { loadBootstrapFile, summarize } from '../config/bootstrap.js';
import { formatErrors } from '../config/result.js';

export async function runValidate(file: string): Promise<number> {
  const { result } = await loadBootstrapFile(file);
  if (!result.ok) {
    process.stderr.write(`${formatErrors(result.errors)}\n`);
    process.stderr.write(`${file}: ${result.errors.length} error${result.errors.length === 1 ? '' : 's'}\n`);
    return 1;
  }
  process.stdout.write(`${file}: ${summarize(result.value)}\n`);
  return 0;
}
