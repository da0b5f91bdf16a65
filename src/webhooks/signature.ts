/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com): the
 * `webhook-signature` header is `v1,<base64 HMAC-SHA256>` of
 * `<webhook-id>.<webhook-timestamp>.<body>`, keyed by the base64 bytes after
 * `whsec_`; during a rotation every secret signs, space-separated, so a
 * receiver holding either one verifies. Checked against the
 * `standardwebhooks` package in test/integration/webhooks.test.ts.
 */
import { createHmac } from 'node:crypto';

export interface SignedHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

export function signatureOf(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64');
  const mac = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64');
  return `v1,${mac}`;
}

/** The three headers of one send; `now` in milliseconds (the timestamp is whole seconds, as the spec says). */
export function signedHeaders(secrets: readonly string[], id: string, body: string, now: number): SignedHeaders {
  const timestamp = Math.floor(now / 1000);
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': secrets.map((s) => signatureOf(s, id, timestamp, body)).join(' '),
  };
}
