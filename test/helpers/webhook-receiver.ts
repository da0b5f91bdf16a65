/**
 * A webhook receiver on loopback that does what an integrator's would: it
 * verifies every request with the `standardwebhooks` package, keeps what it
 * got, and answers a status chosen by the test. It can go down (the port
 * closed: connections refused) and come back on the same port.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface Received {
  id: string;
  timestamp: string;
  signature: string;
  body: string;
  /** The body as the receiver library returned it, or undefined when it did not verify. */
  verified: unknown;
  /** Which of the receiver's secrets verified it (index), -1: none. */
  verifiedWith: number;
  at: number;
  headers: Record<string, string | string[] | undefined>;
}

export class WebhookReceiver {
  readonly received: Received[] = [];
  /** What to answer (a status, or a function of the request number). */
  answer: (n: number) => number = () => 204;
  /** While true, requests are read and kept, never answered (a receiver that hangs). */
  hang = false;
  private server: Server | undefined;
  private port = 0;

  constructor(private readonly secrets: readonly string[]) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks`;
  }

  /** Listens on a free port the first time, on the same port after stop(). */
  async start(): Promise<void> {
    const server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Goes down: the listener closed, open connections cut (the next attempt is refused). */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Requests whose signature verified, one per webhook-id (what a receiver that drops duplicates keeps). */
  uniqueVerified(): Received[] {
    const seen = new Map<string, Received>();
    for (const r of this.received) if (r.verified !== undefined && !seen.has(r.id)) seen.set(r.id, r);
    return [...seen.values()];
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
    let verified: unknown;
    let verifiedWith = -1;
    for (const [i, secret] of this.secrets.entries()) {
      try {
        verified = new Webhook(secret).verify(body, headers);
        verifiedWith = i;
        break;
      } catch {
        // not this secret
      }
    }
    const n = this.received.length;
    this.received.push({
      id: headers['webhook-id'] ?? '',
      timestamp: headers['webhook-timestamp'] ?? '',
      signature: headers['webhook-signature'] ?? '',
      body,
      verified,
      verifiedWith,
      at: Date.now(),
      headers: req.headers,
    });
    if (this.hang) return; // no answer: the sender's time limit ends it
    res.statusCode = verified === undefined ? 401 : this.answer(n);
    res.end();
  }
}

/** Waits until `check` holds (polling); fails with `what` after `timeoutMs`. Not a timing assertion: a bound. */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A fresh Standard Webhooks secret. */
export function newSecret(): string {
  const bytes = new Uint8Array(32);
  crypto.getRandomValues(bytes);
  return `whsec_${Buffer.from(bytes).toString('base64')}`;
}
