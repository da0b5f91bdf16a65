/**
 * The one error type of the gateway and its mapping to HTTP.
 * Bodies always use Imagicle's own error shape: { reason, message }.
 * Imagicle's reasons: 0 InvalidData, 1 InvalidRecordingMetadata, 2 InvalidRecordingAudioFile.
 */
export const Reason = {
  InvalidData: 0,
  InvalidRecordingMetadata: 1,
  InvalidRecordingAudioFile: 2,
} as const;
export type ReasonCode = (typeof Reason)[keyof typeof Reason];

export type ErrorCode =
  | 'BAD_REQUEST'
  | 'BAD_METADATA'
  | 'BAD_AUDIO'
  | 'TOO_LARGE'
  | 'TOO_LONG'
  | 'UNAUTHORIZED'
  | 'BUSY'
  | 'UPSTREAM_UNREACHABLE'
  | 'UPSTREAM_TIMEOUT'
  | 'PROCESS_FAILED'
  | 'PROCESS_TIMEOUT'
  | 'ABORTED'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'INSUFFICIENT_STORAGE'
  | 'TOO_MANY_FAILED_LOGINS'
  | 'INTERNAL';

export interface GatewayErrorOptions {
  status: number;
  reason: ReasonCode;
  cause?: unknown;
  /** Extra response headers, e.g. Retry-After for 503. */
  headers?: Record<string, string>;
  /** Details kept for logs only, never sent to the client. */
  detail?: Record<string, unknown>;
}

export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly reason: ReasonCode;
  readonly headers: Record<string, string>;
  readonly detail: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: GatewayErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.status = options.status;
    this.reason = options.reason;
    this.headers = options.headers ?? {};
    this.detail = options.detail ?? {};
  }

  toBody(): { reason: ReasonCode; message: string } {
    return { reason: this.reason, message: this.message };
  }
}

export const badRequest = (message: string, cause?: unknown): GatewayError =>
  new GatewayError('BAD_REQUEST', message, { status: 400, reason: Reason.InvalidData, cause });

export const badMetadata = (message: string): GatewayError =>
  new GatewayError('BAD_METADATA', message, { status: 400, reason: Reason.InvalidRecordingMetadata });

export const badAudio = (message: string, cause?: unknown, detail?: Record<string, unknown>): GatewayError =>
  new GatewayError('BAD_AUDIO', message, {
    status: 400,
    reason: Reason.InvalidRecordingAudioFile,
    cause,
    ...(detail ? { detail } : {}),
  });

export const tooLarge = (message: string): GatewayError =>
  new GatewayError('TOO_LARGE', message, { status: 413, reason: Reason.InvalidRecordingAudioFile });

export const busy = (message: string, retryAfterSeconds: number): GatewayError =>
  new GatewayError('BUSY', message, {
    status: 503,
    reason: Reason.InvalidData,
    headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) },
  });

export const aborted = (message = 'The request was aborted'): GatewayError =>
  new GatewayError('ABORTED', message, { status: 499, reason: Reason.InvalidData });

/** A full disk (ENOSPC, EDQUOT) anywhere in an error's causes: the server's problem, answered 507 + Retry-After. */
export function isOutOfSpace(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return true;
    if (e instanceof GatewayError && e.code === 'INSUFFICIENT_STORAGE') return true;
  }
  return false;
}

/** Errors of the HTTP layer (a malformed percent-escape in a path, a body parser's refusal) that carry a 4xx. */
function clientStatus(error: unknown): number | undefined {
  const carrier = error as { status?: unknown; statusCode?: unknown } | undefined;
  const status = carrier?.status ?? carrier?.statusCode;
  return typeof status === 'number' && status >= 400 && status < 500 ? status : undefined;
}

/**
 * Maps anything thrown to a GatewayError; unknown errors become a 500 that reveals nothing internal, except a
 * full disk (507 + Retry-After) and the HTTP layer's own 4xx (400 reason 0).
 */
export function toGatewayError(error: unknown): GatewayError {
  if (error instanceof GatewayError) return error;
  if (isOutOfSpace(error)) {
    return new GatewayError('INSUFFICIENT_STORAGE', 'The gateway is out of disk space; retry later', {
      status: 507,
      reason: Reason.InvalidData,
      cause: error,
      headers: { 'Retry-After': '60' },
    });
  }
  const status = clientStatus(error);
  if (status !== undefined) {
    const badEscape = error instanceof URIError || /URI|decode/i.test(String((error as Error).message));
    const message = badEscape ? 'The URL is malformed (a bad percent-escape)' : 'The request is malformed';
    return new GatewayError('BAD_REQUEST', message, {
      status: status === 413 ? 413 : 400,
      reason: Reason.InvalidData,
      cause: error,
    });
  }
  return new GatewayError('INTERNAL', 'Internal error in the gateway', {
    status: 500,
    reason: Reason.InvalidData,
    cause: error,
  });
}
