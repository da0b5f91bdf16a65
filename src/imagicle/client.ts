/**
 * UpstreamClient: one POST of one recording to Imagicle. One attempt per call;
 * retry and spooling wrap this (see pipeline), so the policy stays data.
 * Never follows redirects, never logs credentials.
 */
import { Agent, request, type Dispatcher } from 'undici';
import { GatewayError, Reason } from '../errors.js';
import { buildMultipart } from './multipart.js';

export const RECORDINGS_PATH = '/fw/Apps/Recorder/WebAPI/Recordings';
const MAX_RESPONSE_BYTES = 1024 * 1024;

export interface UpstreamOptions {
  baseUrl: string;
  credentials?: { username: string; password: string } | undefined;
  timeoutMs: number;
  connectTimeoutMs?: number;
  dispatcher?: Dispatcher;
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
        connect: { timeout: options.connectTimeoutMs ?? 10_000 },
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
    try {
      const res = await request(this.url, {
        method: 'POST',
        headers,
        body: body.stream(),
        dispatcher: this.dispatcher,
        ...(input.signal ? { signal: input.signal } : {}),
      });
      const text = await readBounded(res.body);
      const contentType = headerValue(res.headers['content-type']);
      return {
        status: res.statusCode,
        contentType,
        body: text,
        json: parseJson(text),
        retryAfter: headerValue(res.headers['retry-after']),
        elapsedMs: performance.now() - started,
      };
    } catch (error) {
      throw upstreamError(error, this.options.baseUrl, input.signal);
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

/** Connection-level failures, as stable gateway errors. */
export function upstreamError(error: unknown, baseUrl: string, signal?: AbortSignal): GatewayError {
  if (error instanceof GatewayError) return error;
  if (signal?.aborted) return new GatewayError('ABORTED', 'The request was aborted', { status: 499, reason: Reason.InvalidData, cause: error });
  const code = (error as { code?: string } | undefined)?.code;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new GatewayError('UPSTREAM_TIMEOUT', `Imagicle at ${baseUrl} did not answer in time`, {
      status: 504,
      reason: Reason.InvalidData,
      cause: error,
      detail: { code },
    });
  }
  const why = code ?? (error instanceof Error ? error.message : String(error));
  return new GatewayError('UPSTREAM_UNREACHABLE', `Imagicle at ${baseUrl} is unreachable (${why})`, {
    status: 502,
    reason: Reason.InvalidData,
    cause: error,
    detail: { code },
  });
}
