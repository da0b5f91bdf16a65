/**
 * HTTP Basic authentication as the newer Imagicle reference describes it.
 * Secrets are compared in constant time and never leave this module.
 */
import { timingSafeEqual } from 'node:crypto';

export interface Credentials {
  username: string;
  password: string;
}

interface BasicAuth {
  username: string;
  password: string;
}

function parseBasic(header: string): BasicAuth | null {
  const match = /^Basic\s+([A-Za-z0-9+/=._~-]+)\s*$/i.exec(header);
  if (!match?.[1]) return null;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function sameSecret(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  // Compare equal-length buffers so the timing does not reveal where they differ.
  const equal = timingSafeEqual(left.length === right.length ? left : right, right);
  return equal && left.length === right.length;
}

/** True when no credentials are configured, or the header carries exactly them. */
export function isAuthorized(header: string | undefined, expected: Credentials | undefined): boolean {
  if (!expected) return true;
  if (!header) return false;
  const given = parseBasic(header);
  if (!given) return false;
  const userOk = sameSecret(given.username, expected.username);
  const passOk = sameSecret(given.password, expected.password);
  return userOk && passOk;
}

/** How a request authenticated, safe to keep: `basic:<user>`, `none`, or the scheme of any other header. */
export function describeAuthorization(header: string | undefined): string {
  if (!header || header.trim() === '') return 'none';
  const basic = parseBasic(header);
  if (basic) return `basic:${basic.username}`;
  const scheme = /^\s*([A-Za-z][A-Za-z0-9._-]*)/.exec(header)?.[1];
  return scheme ? scheme.toLowerCase() : 'unknown';
}
