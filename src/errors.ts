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

/** Maps anything thrown to a GatewayError; unknown errors become a 500 that reveals nothing internal. */
export function toGatewayError(error: unknown): GatewayError {
  if (error instanceof GatewayError) return error;
  return new GatewayError('INTERNAL', 'Internal error in the gateway', {
    status: 500,
    reason: Reason.InvalidData,
    cause: error,
  });
}
