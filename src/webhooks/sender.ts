/**
 * One webhook attempt: a signed POST with a time limit, no redirects, and the
 * address check applied where the connection is made. A name is resolved by
 * the connection's own lookup, which drops refused addresses (address.ts):
 * what the name said when the upload was accepted does not matter, only what
 * it says now, for this very connection (DNS rebinding). An IP literal never
 * reaches a lookup, so it is checked here before the request.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type BlockList, type LookupFunction } from 'node:net';
import { Agent, request } from 'undici';
import { addressProblem, hostOf, type AddressPolicy } from './address.js';
import { signedHeaders } from './signature.js';

/** Resolves a name to every address it has (the default is the system's resolver, as any connection uses). */
export type Resolver = (hostname: string) => Promise<LookupAddress[]>;

export const systemResolver: Resolver = (hostname) =>
  new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true }, (error, addresses) => (error ? reject(error) : resolve(addresses)));
  });

export class AddressRefused extends Error {
  readonly code = 'WEBHOOK_ADDRESS_REFUSED';
  constructor(message: string) {
    super(message);
    this.name = 'AddressRefused';
  }
}

export interface SendRequest {
  url: string;
  /** The webhook-id. */
  id: string;
  body: string;
  secrets: readonly string[];
  /** The endpoint may be on a private address (an operator's endpoint with allowPrivate). */
  allowPrivate: boolean;
}

export type SendResult =
  | { kind: 'answered'; status: number; ms: number }
  /** No answer: refused, reset, timed out, or the address is not allowed (`refused`). */
  | { kind: 'error'; message: string; refused: boolean; ms: number };

export interface SenderOptions {
  timeoutMs: number;
  privateNetworks: BlockList;
  resolve?: Resolver | undefined;
  now?: () => number;
}

const USER_AGENT = 'imagicle-gateway-webhooks/1';
/** What is read of a receiver's answer before it is dropped: its status is all that counts. */
const MAX_ANSWER_BYTES = 64 * 1024;

export class WebhookSender {
  private readonly agents = new Map<boolean, Agent>();
  private readonly resolve: Resolver;
  private readonly now: () => number;

  constructor(private readonly options: SenderOptions) {
    this.resolve = options.resolve ?? systemResolver;
    this.now = options.now ?? Date.now;
  }

  private policy(allowPrivate: boolean): AddressPolicy {
    return { allowed: this.options.privateNetworks, allowAllPrivate: allowPrivate };
  }

  /** A lookup for net/tls.connect that only ever returns allowed addresses. */
  private guardedLookup(allowPrivate: boolean): LookupFunction {
    const policy = this.policy(allowPrivate);
    return (hostname, options, callback) => {
      this.resolve(hostname).then(
        (addresses) => {
          const family = options.family === 4 || options.family === 6 ? options.family : undefined;
          const usable = addresses.filter(
            (a) => (family === undefined || a.family === family) && addressProblem(a.address, policy) === undefined,
          );
          if (usable.length === 0) {
            const seen = addresses.map((a) => a.address).join(', ') || 'no address';
            callback(new AddressRefused(`${hostname} resolves to ${seen}: not an address webhooks may reach`), '', 4);
            return;
          }
          if (options.all) {
            // Node's own signature for `all: true` hands the list in the second argument.
            (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, usable);
          } else callback(null, usable[0]!.address, usable[0]!.family);
        },
        (error: unknown) => callback(error as NodeJS.ErrnoException, '', 4),
      );
    };
  }

  private agent(allowPrivate: boolean): Agent {
    let agent = this.agents.get(allowPrivate);
    if (!agent) {
      agent = new Agent({
        connect: { lookup: this.guardedLookup(allowPrivate), timeout: this.options.timeoutMs },
        headersTimeout: this.options.timeoutMs,
        bodyTimeout: this.options.timeoutMs,
        keepAliveTimeout: 4000,
      });
      this.agents.set(allowPrivate, agent);
    }
    return agent;
  }

  /** Where `url` may not be sent before any connection (the scheme, credentials, an IP literal's range). */
  preflight(url: URL, allowPrivate: boolean): string | undefined {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return `${url.protocol} is not http or https`;
    if (url.username || url.password) return 'the URL carries credentials';
    const host = hostOf(url);
    if (isIP(host) !== 0) return addressProblem(host, this.policy(allowPrivate));
    return undefined;
  }

  async send(r: SendRequest): Promise<SendResult> {
    const started = performance.now();
    const ms = (): number => performance.now() - started;
    let url: URL;
    try {
      url = new URL(r.url);
    } catch {
      return { kind: 'error', message: 'not a URL', refused: true, ms: 0 };
    }
    const problem = this.preflight(url, r.allowPrivate);
    if (problem) return { kind: 'error', message: problem, refused: true, ms: ms() };
    try {
      const answer = await request(url, {
        method: 'POST',
        dispatcher: this.agent(r.allowPrivate),
        headers: {
          'content-type': 'application/json',
          'user-agent': USER_AGENT,
          ...signedHeaders(r.secrets, r.id, r.body, this.now()),
        },
        body: r.body,
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      // The answer's body is not ours to keep; read a little of it so the connection can be reused.
      await answer.body.dump({ limit: MAX_ANSWER_BYTES }).catch(() => undefined);
      return { kind: 'answered', status: answer.statusCode, ms: ms() };
    } catch (error) {
      const refused = refusal(error);
      if (refused) return { kind: 'error', message: refused.message, refused: true, ms: ms() };
      return { kind: 'error', message: describe(error, this.options.timeoutMs), refused: false, ms: ms() };
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.agents.values()].map((a) => a.close().catch(() => undefined)));
    this.agents.clear();
  }
}

function refusal(error: unknown): AddressRefused | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof AddressRefused) return e;
  }
  return undefined;
}

/** A short reason for the delivery's lastError: the error's code and message, without a stack. */
function describe(error: unknown, timeoutMs: number): string {
  const e = error as { name?: string; code?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.code === 'UND_ERR_HEADERS_TIMEOUT' || e?.code === 'UND_ERR_CONNECT_TIMEOUT') {
    return `no answer within ${timeoutMs} ms`;
  }
  const code = e?.code ?? e?.cause?.code;
  const message = e?.cause?.message ?? e?.message ?? String(error);
  return (code && !message.includes(code) ? `${code}: ${message}` : message).slice(0, 300);
}
