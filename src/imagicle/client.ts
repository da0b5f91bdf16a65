/**
 * UpstreamClient: one POST of one recording to Imagicle, and its reads. One
 * attempt per call; the retries (delivery/retrying-deliver.ts, retry.ts) and
 * the job stores wrap this, so the policy stays data.
 * Never follows redirects, never logs credentials.
 */
import { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';
import { GatewayError } from '../errors.js';
import { buildMultipart } from './multipart.js';

export const RECORDINGS_PATH = '/fw/Apps/Recorder/WebAPI/Recordings';
const MAX_RESPONSE_BYTES = 1024 * 1024;

export interface UpstreamOptions {
  baseUrl: string;
  credentials?: { username: string; password: string } | undefined;
  timeoutMs: number;
  connectTimeoutMs?: number;
  /**
   * Slowest acceptable upload rate: each attempt gets an overall deadline of
   * connect + headers timeout + body bytes at this rate. 0 or unset: none.
   */
  minBytesPerSecond?: number | undefined;
  /** TLS towards Imagicle: a private CA (PEM), or no verification (rejectUnauthorized: false). */
  tls?: { ca?: string | undefined; rejectUnauthorized?: boolean } | undefined;
  dispatcher?: Dispatcher;
  /** Told of every attempt's answer (its HTTP status, or 'error' when none came) and its duration. */
  observe?: ((status: number | 'error', seconds: number) => void) | undefined;
}

export interface UploadInput {
  metadata: Record<string, unknown>;
  audioPath: string;
  audioBytes: number;
  contentType: string;
  filename: string;
  /** The caller's Authorization header, forwarded when the gateway holds no credentials. */
  callerAuthorization?: string | undefined;
  signal?: AbortSignal | undefined;
}

export interface UpstreamResponse {
  status: number;
  contentType: string | undefined;
  body: string;
  /** The parsed JSON body when it is JSON. */
  json: unknown;
  retryAfter: string | undefined;
  elapsedMs: number;
}

export class UpstreamClient {
  readonly url: string;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;

  constructor(private readonly options: UpstreamOptions) {
    this.url = `${options.baseUrl}${RECORDINGS_PATH}`;
    this.ownsDispatcher = options.dispatcher === undefined;
    this.dispatcher =
      options.dispatcher ??
      new Agent({
        connect: {
          timeout: options.connectTimeoutMs ?? 10_000,
          ...(options.tls?.ca !== undefined ? { ca: options.tls.ca } : {}),
          ...(options.tls?.rejectUnauthorized === false ? { rejectUnauthorized: false } : {}),
        },
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
      });
  }

  private authorization(callerAuthorization: string | undefined): string | undefined {
    const creds = this.options.credentials;
    if (creds) return `Basic ${Buffer.from(`${creds.username}:${creds.password}`, 'utf8').toString('base64')}`;
    return callerAuthorization;
  }

  async postRecording(input: UploadInput): Promise<UpstreamResponse> {
    const started = performance.now();
    const body = buildMultipart({
      metadataJson: JSON.stringify(input.metadata),
      audioPath: input.audioPath,
      audioBytes: input.audioBytes,
      contentType: input.contentType,
      filename: input.filename,
    });
    const headers: Record<string, string> = {
      'content-type': body.contentType,
      'content-length': String(body.contentLength),
      accept: 'application/json',
    };
    const auth = this.authorization(input.callerAuthorization);
    if (auth) headers.authorization = auth;
    // How much of the body undici took: a failure before the end cannot have been imported (delivery/retry.ts).
    const progress = { sent: 0, complete: false };
    const deadlineMs = attemptDeadlineMs(this.options, body.contentLength);
    // One controller per attempt, its timer and its listener released in `finally`: AbortSignal.any() and
    // AbortSignal.timeout() keep state alive for as long as the longest-lived input signal (the worker's).
    const attempt = new AbortController();
    const deadline = { aborted: false };
    const timer =
      deadlineMs > 0 ? setTimeout(() => ((deadline.aborted = true), attempt.abort()), deadlineMs) : undefined;
    timer?.unref();
    const forwardAbort = (): void => attempt.abort();
    if (input.signal?.aborted) attempt.abort();
    else input.signal?.addEventListener('abort', forwardAbort, { once: true });
    const signal = attempt.signal;
    let answered: number | undefined;
    try {
      const res = await request(this.url, {
        method: 'POST',
        headers,
        body: countBody(body.stream(), progress),
        dispatcher: this.dispatcher,
        signal,
      });
      answered = res.statusCode;
      const text = await readBounded(res.body);
      if (res.statusCode >= 300 && res.statusCode < 400) {
        // undici's request() follows nothing; say so rather than hand a Location (maybe anywhere) to the caller.
        throw new GatewayError(
          'UPSTREAM_UNREACHABLE',
          `Imagicle answered with a redirect (${res.statusCode}); the gateway does not follow redirects: ` +
            'set IMAGICLE_URL to the final address',
          {
            detail: { upstreamStatus: res.statusCode, upstream: this.options.baseUrl },
          },
        );
      }
      const contentType = headerValue(res.headers['content-type']);
      this.options.observe?.(res.statusCode, (performance.now() - started) / 1000);
      return {
        status: res.statusCode,
        contentType,
        body: text,
        json: parseJson(text),
        retryAfter: headerValue(res.headers['retry-after']),
        elapsedMs: performance.now() - started,
      };
    } catch (error) {
      this.options.observe?.(answered ?? 'error', (performance.now() - started) / 1000);
      const failure =
        deadline.aborted && !input.signal?.aborted
          ? new GatewayError('UPSTREAM_TIMEOUT', `Imagicle did not complete the upload within ${deadlineMs} ms`, {
              cause: error,
              detail: { code: 'ATTEMPT_DEADLINE', upstream: this.options.baseUrl },
            })
          : upstreamError(error, this.options.baseUrl, input.signal);
      Object.assign(failure.detail, {
        bodyBytesSent: progress.sent,
        bodyComplete: progress.complete,
        contentLength: body.contentLength,
      });
      throw failure;
    } finally {
      if (timer) clearTimeout(timer);
      input.signal?.removeEventListener('abort', forwardAbort);
    }
  }

  /**
   * One GET of Imagicle's read endpoints: the list (`query`: its filters and paging) or one recording's detail
   * (`id`). Always under RECORDINGS_PATH of the configured upstream (an id is one encoded path segment), with the
   * uploads' credentials (or the caller's forwarded Authorization), TLS and timeouts: one attempt, bounded by
   * connect + IMAGICLE_TIMEOUT_MS. Connection failures throw as postRecording's do.
   */
  async read(
    target: { query: Record<string, string> } | { id: string },
    callerAuthorization: string | undefined,
    signal?: AbortSignal,
  ): Promise<{ status: number; json: unknown }> {
    const url =
      'id' in target
        ? `${this.url}/${encodeURIComponent(target.id)}`
        : `${this.url}?${new URLSearchParams(target.query).toString()}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    const auth = this.authorization(callerAuthorization);
    if (auth) headers.authorization = auth;
    const deadlineMs = (this.options.connectTimeoutMs ?? 10_000) + this.options.timeoutMs;
    const attempt = new AbortController();
    const deadline = { aborted: false };
    const timer = setTimeout(() => ((deadline.aborted = true), attempt.abort()), deadlineMs);
    timer.unref();
    const forwardAbort = (): void => attempt.abort();
    if (signal?.aborted) attempt.abort();
    else signal?.addEventListener('abort', forwardAbort, { once: true });
    try {
      const res = await request(url, { method: 'GET', headers, dispatcher: this.dispatcher, signal: attempt.signal });
      const text = await readBounded(res.body);
      return { status: res.statusCode, json: parseJson(text) };
    } catch (error) {
      throw deadline.aborted && !signal?.aborted
        ? new GatewayError('UPSTREAM_TIMEOUT', `Imagicle did not answer a read within ${deadlineMs} ms`, {
            cause: error,
            detail: { code: 'READ_DEADLINE', upstream: this.options.baseUrl },
          })
        : upstreamError(error, this.options.baseUrl, signal);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', forwardAbort);
    }
  }

  /** Reachability for /readyz: any HTTP answer means the server is there. */
  async ping(timeoutMs = 3000): Promise<{ reachable: boolean; status?: number; error?: string }> {
    try {
      const res = await request(this.url, {
        method: 'GET',
        dispatcher: this.dispatcher,
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.body.dump();
      return { reachable: true, status: res.statusCode };
    } catch (error) {
      return { reachable: false, error: error instanceof Error ? error.message : String(error) };
    }
  }

  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close();
  }
}

/** Per-attempt deadline: connect + headers timeout + the body at the minimum rate; 0 when no rate is set. */
function attemptDeadlineMs(
  options: Pick<UpstreamOptions, 'timeoutMs' | 'connectTimeoutMs' | 'minBytesPerSecond'>,
  contentLength: number,
): number {
  const rate = options.minBytesPerSecond ?? 0;
  if (rate <= 0) return 0;
  return (options.connectTimeoutMs ?? 10_000) + options.timeoutMs + Math.ceil((contentLength / rate) * 1000);
}

/** Yields the body and counts what undici pulled; `complete` once it asked past the last chunk. */
function countBody(source: AsyncIterable<Buffer>, progress: { sent: number; complete: boolean }): Readable {
  return Readable.from(
    (async function* counted() {
      for await (const chunk of source) {
        yield chunk;
        progress.sent += chunk.length;
      }
      progress.complete = true;
    })(),
    { objectMode: false, highWaterMark: 1 },
  );
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

async function readBounded(body: AsyncIterable<Buffer | string> & { destroy?: () => void }): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    total += buf.length;
    if (total > MAX_RESPONSE_BYTES) break;
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8').slice(0, MAX_RESPONSE_BYTES);
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * Connection-level failures, as stable gateway errors. Messages reach callers and never name the upstream
 * (IMAGICLE_URL is the operator's business); the URL and the low-level message are in `detail`, for the log.
 */
function upstreamError(error: unknown, baseUrl: string, signal?: AbortSignal): GatewayError {
  if (error instanceof GatewayError) return error;
  if (signal?.aborted) return new GatewayError('ABORTED', 'The request was aborted', { cause: error });
  const code = (error as { code?: string } | undefined)?.code;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new GatewayError('UPSTREAM_TIMEOUT', 'Imagicle did not answer in time', {
      cause: error,
      detail: { code, upstream: baseUrl },
    });
  }
  // A code (ECONNREFUSED, a TLS verification code) says what to fix without saying where; a free-text message might.
  const why = code && /^[A-Z0-9_]{2,64}$/.test(code) ? code : 'connection failed';
  return new GatewayError('UPSTREAM_UNREACHABLE', `Imagicle is unreachable (${why})`, {
    cause: error,
    detail: { code, upstream: baseUrl, error: error instanceof Error ? error.message : String(error) },
  });
}
