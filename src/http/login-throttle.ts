/**
 * Failed logins are throttled per address: after AUTH_FAIL_LIMIT failed
 * authentications within AUTH_FAIL_WINDOW, further failures from that
 * address are answered 429 with Retry-After (until the window of the oldest
 * counted failure has passed) instead of 401, and keep counting. Callers
 * that authenticate are never affected: the credentials are checked first,
 * so a shared address (NAT, a proxy) does not lock out a legitimate client.
 * (Every API key has 16+ characters; the throttle is what bounds guessing a
 * Basic password of 8.)
 */
import { GatewayError } from '../errors.js';

export interface ThrottleSettings {
  /** Failures allowed per address within the window; 0: no throttling. */
  limit: number;
  windowMs: number;
}

/** Addresses tracked at once; the oldest are forgotten beyond it, so the table stays bounded. */
const MAX_ADDRESSES = 10_000;

export class LoginThrottle {
  private readonly failures = new Map<string, number[]>();

  constructor(private readonly settings: ThrottleSettings) {}

  /** Records a failure; resolves to the 429 to answer when the address is over its limit, else undefined. */
  fail(address: string, now = Date.now()): GatewayError | undefined {
    if (this.settings.limit <= 0) return undefined;
    const recent = (this.failures.get(address) ?? []).filter((t) => t > now - this.settings.windowMs);
    recent.push(now);
    // Only the last `limit + 1` matter for the decision.
    const kept = recent.slice(-(this.settings.limit + 1));
    this.failures.delete(address);
    this.failures.set(address, kept);
    if (this.failures.size > MAX_ADDRESSES) this.failures.delete(this.failures.keys().next().value!);
    if (kept.length <= this.settings.limit) return undefined;
    const retryAfterSeconds = Math.max(1, Math.ceil((kept[0]! + this.settings.windowMs - now) / 1000));
    const message = `Too many failed logins from this address; retry in ${retryAfterSeconds} s`;
    return new GatewayError('TOO_MANY_FAILED_LOGINS', message, { retryAfterSeconds });
  }

  /** Addresses tracked (for tests). */
  size(): number {
    return this.failures.size;
  }
}
