/**
 * The one error type of the gateway and its one table of HTTP answers.
 * A throw site names a code and a message; the table says which status and
 * which of Imagicle's reasons the client gets. Bodies always use Imagicle's
 * own error shape: { reason, message }. Imagicle's reasons: 0 InvalidData,
 * 1 InvalidRecordingMetadata, 2 InvalidRecordingAudioFile.
 * Models: tus-node-server's ERRORS table, undici's stable error codes.
 */
export const Reason = {
  InvalidData: 0,
  InvalidRecordingMetadata: 1,
  InvalidRecordingAudioFile: 2,
} as const;
export type ReasonCode = (typeof Reason)[keyof typeof Reason];

interface ErrorEntry {
  status: number;
  reason: ReasonCode;
  /** Headers every answer with this code carries. */
  headers?: Readonly<Record<string, string>>;
}

const D = Reason.InvalidData;
const M = Reason.InvalidRecordingMetadata;
const A = Reason.InvalidRecordingAudioFile;

const ERRORS = {
  /** Malformed multipart, a missing part, bad options or query: the client's request is wrong. */
  BAD_REQUEST: { status: 400, reason: D },
  /** The metadata breaks Imagicle's rules. */
  BAD_METADATA: { status: 400, reason: M },
  /** Not audio, unreadable, too long, too many channels, needs more memory than allowed. */
  BAD_AUDIO: { status: 400, reason: A },
  /** Decoding took longer than its budget: the file is the problem (a lying header, a decoder bomb). */
  PROCESS_TIMEOUT: { status: 400, reason: A },
  UNAUTHORIZED: { status: 401, reason: D },
  /** Authenticated, but not allowed this (a tenant key at an operator's endpoint). */
  FORBIDDEN: { status: 403, reason: D },
  NOT_FOUND: { status: 404, reason: D },
  METHOD_NOT_ALLOWED: { status: 405, reason: D },
  /** The upload stalled or crawled: the connection is closed after the answer. */
  UPLOAD_TIMEOUT: { status: 408, reason: D, headers: { Connection: 'close' } },
  CONFLICT: { status: 409, reason: D },
  /** Something that existed is gone for good (a delivered job's audio). */
  GONE: { status: 410, reason: D },
  /** Audio above MAX_UPLOAD_BYTES, MAX_EXPANSION or MAX_PART_BYTES (OVERSIZE=reject). */
  TOO_LARGE: { status: 413, reason: A },
  /** A request body above what the HTTP layer reads (not audio). */
  REQUEST_TOO_LARGE: { status: 413, reason: D },
  TOO_MANY_FAILED_LOGINS: { status: 429, reason: D },
  /** The client left; answered as 400 when an answer can still be written. */
  ABORTED: { status: 499, reason: D },
  INTERNAL: { status: 500, reason: D },
  /** ffmpeg failed for a reason that is not the file's (it could not start, it crashed). */
  PROCESS_FAILED: { status: 500, reason: D },
  UPSTREAM_UNREACHABLE: { status: 502, reason: D },
  /** Overload, shutdown, a full spool: retry later (with Retry-After). */
  BUSY: { status: 503, reason: D },
  UPSTREAM_TIMEOUT: { status: 504, reason: D },
  /** The disk is full (ENOSPC, or the reservation cannot be made): the server's problem. */
  INSUFFICIENT_STORAGE: { status: 507, reason: D },
} as const satisfies Record<string, ErrorEntry>;

export type ErrorCode = keyof typeof ERRORS;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}

export interface GatewayErrorOptions {
  cause?: unknown;
  /** Retry-After, in seconds (503, 507, 429). */
  retryAfterSeconds?: number;
  /** Headers whose value depends on the request, e.g. WWW-Authenticate. */
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

  constructor(code: ErrorCode, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const entry: ErrorEntry = ERRORS[code];
    this.name = 'GatewayError';
    this.code = code;
    this.status = entry.status;
    this.reason = entry.reason;
    this.headers = { ...entry.headers, ...options.headers };
    if (options.retryAfterSeconds !== undefined) {
      this.headers['Retry-After'] = String(Math.max(1, Math.ceil(options.retryAfterSeconds)));
    }
    this.detail = options.detail ?? {};
  }

  toBody(): { reason: ReasonCode; message: string } {
    return { reason: this.reason, message: this.message };
  }
}

export const badRequest = (message: string, cause?: unknown): GatewayError =>
  new GatewayError('BAD_REQUEST', message, { cause });

export const badMetadata = (message: string): GatewayError => new GatewayError('BAD_METADATA', message);

export const badAudio = (message: string, cause?: unknown, detail?: Record<string, unknown>): GatewayError =>
  new GatewayError('BAD_AUDIO', message, { cause, ...(detail ? { detail } : {}) });

export const tooLarge = (message: string): GatewayError => new GatewayError('TOO_LARGE', message);

export const busy = (message: string, retryAfterSeconds: number): GatewayError =>
  new GatewayError('BUSY', message, { retryAfterSeconds });

export const aborted = (message = 'The request was aborted'): GatewayError => new GatewayError('ABORTED', message);

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
 * full disk (507 + Retry-After) and the HTTP layer's own 4xx (400 reason 0, 413 for a body too large).
 */
export function toGatewayError(error: unknown): GatewayError {
  if (error instanceof GatewayError) return error;
  if (isOutOfSpace(error)) {
    return new GatewayError('INSUFFICIENT_STORAGE', 'The gateway is out of disk space; retry later', {
      cause: error,
      retryAfterSeconds: 60,
    });
  }
  const status = clientStatus(error);
  if (status !== undefined) {
    if (status === 413) return new GatewayError('REQUEST_TOO_LARGE', 'The request is too large', { cause: error });
    const badEscape = error instanceof URIError || /URI|decode/i.test(String((error as Error).message));
    const message = badEscape ? 'The URL is malformed (a bad percent-escape)' : 'The request is malformed';
    return new GatewayError('BAD_REQUEST', message, { cause: error });
  }
  return new GatewayError('INTERNAL', 'Internal error in the gateway', { cause: error });
}
