// Failures of `remora iptables`: a stable code and the process exit code each one maps to (sysexits.h).

/** Exit codes of `remora iptables`: 0 done, 1 bad flags or a rule load that failed, 69 a tool missing, 77 not root. */
export const ExitCode = {
  ok: 0,
  failure: 1,
  unavailable: 69,
  noPermission: 77,
} as const;

export type CaptureErrorCode =
  | 'REMORA_ERR_CAPTURE_NOT_ROOT'
  | 'REMORA_ERR_CAPTURE_TOOL_MISSING'
  | 'REMORA_ERR_CAPTURE_LOAD';

const EXIT: Record<CaptureErrorCode, number> = {
  REMORA_ERR_CAPTURE_NOT_ROOT: ExitCode.noPermission,
  REMORA_ERR_CAPTURE_TOOL_MISSING: ExitCode.unavailable,
  REMORA_ERR_CAPTURE_LOAD: ExitCode.failure,
};

export class CaptureError extends Error {
  readonly code: CaptureErrorCode;

  constructor(code: CaptureErrorCode, message: string) {
    super(message);
    this.name = 'CaptureError';
    this.code = code;
  }

  get exitCode(): number {
    return EXIT[this.code];
  }
}
