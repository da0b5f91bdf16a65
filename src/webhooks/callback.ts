/**
 * A caller's own webhook URL for one upload: the `callbackUrl` form field
 * (or query parameter, as the stereo options are given), or a `callbackUrl`
 * member of jsondata. It is accepted only when
 *   - its host is one of WEBHOOK_ALLOWED_HOSTS (the operator's list), and
 *   - the owner's WEBHOOKS entry (or "*") has a `callback` block to sign it, and
 *   - it is not, and does not resolve to, a private, loopback or link-local
 *     address (unless WEBHOOK_PRIVATE_NETWORKS allows it).
 * Otherwise the upload is refused (400, reason 0) with the reason. The check
 * at connect time (sender.ts) still applies to every attempt: a name that
 * resolves differently later reaches nothing it may not.
 */
import { isIP } from 'node:net';
import type { BlockList } from 'node:net';
import { badRequest } from '../errors.js';
import { addressProblem, hostAllowed, hostOf } from './address.js';
import type { Resolver } from './sender.js';
import { webhooksFor, type WebhookSettings } from './settings.js';

/** The name of the form field, query parameter and jsondata member. */
export const CALLBACK_FIELD = 'callbackUrl';
const MAX_CALLBACK_URL_LENGTH = 2048;
/** How long the intake waits for DNS before it lets the connect-time check decide alone. */
const RESOLVE_TIMEOUT_MS = 3000;

export interface CallbackPolicy {
  settings: WebhookSettings;
  privateNetworks: BlockList;
  resolve: Resolver;
}

const refuse = (why: string) => badRequest(`Invalid callbackUrl: ${why}`);

function given(value: unknown, where: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw refuse(`the ${where} value must be a single string`);
  const text = value.trim();
  return text === '' ? undefined : text;
}

/**
 * The callbackUrl of an upload, checked; undefined when none was given. A `callbackUrl` member of `metadata`
 * is removed from it (Imagicle must not receive it). `policy` undefined: webhooks are off, any callbackUrl is refused.
 */
export async function takeCallbackUrl(
  fields: Readonly<Record<string, string>>,
  query: Readonly<Record<string, unknown>>,
  metadata: Record<string, unknown> | undefined,
  owner: string,
  policy: CallbackPolicy | undefined,
): Promise<string | undefined> {
  const fromJson = metadata ? given(metadata[CALLBACK_FIELD], 'jsondata') : undefined;
  if (metadata && CALLBACK_FIELD in metadata) delete metadata[CALLBACK_FIELD];
  const candidates = [given(fields[CALLBACK_FIELD], 'form field'), given(query[CALLBACK_FIELD], 'query'), fromJson];
  const values = [...new Set(candidates.filter((v): v is string => v !== undefined))];
  if (values.length === 0) return undefined;
  if (values.length > 1) throw refuse('given more than once with different values');
  const text = values[0]!;
  if (!policy) throw refuse('webhooks are not enabled on this gateway');
  if (text.length > MAX_CALLBACK_URL_LENGTH) throw refuse(`longer than ${MAX_CALLBACK_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw refuse('not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw refuse('must be an http:// or https:// URL');
  if (url.username || url.password) throw refuse('must not carry credentials');
  const host = hostOf(url);
  if (!hostAllowed(host, policy.settings.allowedHosts)) {
    throw refuse(`the host ${printable(host)} is not one the gateway's operator allows (WEBHOOK_ALLOWED_HOSTS)`);
  }
  if (!webhooksFor(policy.settings, owner)?.callback) {
    throw refuse('callbacks are not enabled for this key (no signing secret is configured for it in WEBHOOKS)');
  }
  const addressPolicy = { allowed: policy.privateNetworks, allowAllPrivate: false };
  if (isIP(host) !== 0) {
    const problem = addressProblem(host, addressPolicy);
    if (problem) throw refuse(`${problem}: webhooks are not sent there`);
    return url.href;
  }
  const addresses = await resolveSoon(policy.resolve, host);
  if (addresses === 'unknown') throw refuse(`the host ${printable(host)} does not resolve`);
  if (addresses && addresses.every((a) => addressProblem(a.address, addressPolicy) !== undefined)) {
    throw refuse(`the host ${printable(host)} resolves to ${addresses[0]!.address}: webhooks are not sent there`);
  }
  return url.href;
}

/** The addresses of a name; 'unknown' when it has none; undefined when DNS did not answer in time (decided later). */
async function resolveSoon(resolve: Resolver, host: string) {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((done) => (timer = setTimeout(() => done(undefined), RESOLVE_TIMEOUT_MS)));
  try {
    const addresses = await Promise.race([resolve(host), timeout]);
    return addresses && addresses.length === 0 ? 'unknown' : addresses;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOTFOUND' || code === 'ENODATA' ? 'unknown' : undefined;
  } finally {
    clearTimeout(timer);
  }
}

function printable(value: string): string {
  return value.replace(/[^\x20-\x7e]/g, '?').slice(0, 100);
}
