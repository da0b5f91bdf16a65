/**
 * Shifting an ISO 8601 instant by an exact number of seconds, keeping the
 * way the source wrote it: the same offset (Z, ±hh:mm or none) and the same
 * number of fraction digits (at least milliseconds, at most nanoseconds).
 */
import { START_DATE_TIME_RE } from './schema.js';

const NS_PER_MS = 1_000_000n;
const NS_PER_S = 1_000_000_000n;

export function shiftInstant(instant: string, seconds: number): string {
  const m = START_DATE_TIME_RE.exec(instant);
  if (!m) throw new RangeError(`not an ISO 8601 instant: ${instant}`);
  const [, y, mo, d, h, mi, s, frac = '', zone] = m;
  const digits = Math.min(9, Math.max(3, frac.length));
  const offsetMinutes = zoneMinutes(zone);
  // Wall-clock time in the instant's own offset, as nanoseconds since the epoch.
  const wallMs = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  const fracNs = BigInt(frac.padEnd(9, '0').slice(0, 9) || '0');
  const shifted = BigInt(wallMs) * NS_PER_MS + fracNs + BigInt(Math.round(seconds * 1e9));
  const wholeMs = (shifted / NS_PER_S) * 1000n;
  const date = new Date(Number(wholeMs));
  const remainderNs = shifted % NS_PER_S;
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  const fraction = remainderNs.toString().padStart(9, '0').slice(0, digits);
  const body =
    `${pad(date.getUTCFullYear(), 4)}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}` +
    `T${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}.${fraction}`;
  return `${body}${zone === undefined ? '' : offsetMinutes === 0 && zone === 'Z' ? 'Z' : zone}`;
}

function zoneMinutes(zone: string | undefined): number {
  if (zone === undefined || zone === 'Z') return 0;
  const sign = zone.startsWith('-') ? -1 : 1;
  const digits = zone.slice(1).replace(':', '');
  return sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4)));
}

/**
 * Nanoseconds since the epoch of an ISO 8601 instant (no offset: UTC, as Imagicle reads it), or null when it is
 * not one. Two spellings of one instant (`…13:00:00.0000000Z`, `…14:00:00+01:00`) give the same number.
 */
export function instantNanos(instant: string): bigint | null {
  const m = START_DATE_TIME_RE.exec(instant.trim());
  if (!m) return null;
  const [, y, mo, d, h, mi, s, frac = '', zone] = m;
  const wallMs = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (Number.isNaN(wallMs)) return null;
  const fracNs = BigInt(frac.padEnd(9, '0').slice(0, 9) || '0');
  return (BigInt(wallMs) - BigInt(zoneMinutes(zone)) * 60_000n) * NS_PER_MS + fracNs;
}

/** True when both texts are instants and denote the same one, whatever their offsets and fraction digits. */
export function sameInstant(a: string, b: string): boolean {
  const left = instantNanos(a);
  return left !== null && left === instantNanos(b);
}

/** An instant as UTC with the fraction digits it needs (none, or up to 7 as .NET writes them): `…T13:00:00Z`. */
export function utcInstant(nanos: bigint): string {
  const wholeSeconds = nanos / NS_PER_S - (nanos % NS_PER_S < 0n ? 1n : 0n);
  const remainderNs = nanos - wholeSeconds * NS_PER_S;
  const date = new Date(Number(wholeSeconds) * 1000);
  const ticks = remainderNs.toString().padStart(9, '0').slice(0, 7).replace(/0+$/, '');
  return `${date.toISOString().slice(0, 19)}${ticks ? `.${ticks}` : ''}Z`;
}
