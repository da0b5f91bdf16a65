/**
 * Access control for the gateway's own callers. When the gateway holds
 * Imagicle's credentials, an anonymous caller would be an open relay into the
 * recording server, so callers authenticate with an API key (`Authorization:
 * Bearer <key>` or `X-Api-Key: <key>`) or HTTP Basic (GATEWAY_BASIC_USERS).
 *
 * - Secrets are compared as SHA-256 digests with crypto.timingSafeEqual, and
 *   every configured entry is compared (no early exit), so neither the time
 *   nor the order reveals which part matched.
 * - A failed attempt gets 401 in Imagicle's shape with WWW-Authenticate; the
 *   presented value is never logged nor echoed.
 * - An Authorization header that authenticated the caller to the gateway is
 *   not forwarded to Imagicle (forwardableAuthorization).
 *
 * Mount `createAccessControl(config.access)` in front of any route that
 * reaches Imagicle or runs ffmpeg; health endpoints stay open.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { GatewayError } from '../errors.js';
import type { AccessSettings } from '../access.js';
import type { LoginThrottle } from './login-throttle.js';

const REALM = 'imagicle-gateway';

export interface Caller {
  method: 'api-key' | 'basic';
  /** A name safe to log: the Basic user name, or the API key's position in GATEWAY_API_KEYS. */
  name: string;
  /**
   * Stable, non-secret identity of the caller, the owner of its jobs: `basic:<user>`, or `key:<12 hex digits>`
   * (the start of the key's SHA-256, so reordering GATEWAY_API_KEYS changes nothing and the key is not revealed).
   */
  id: string;
  /** An operator key (GATEWAY_ADMIN_KEYS): sees every owner's jobs. */
  admin: boolean;
  /** The Authorization header was the gateway credential, so it is not forwarded. */
  consumedAuthorization: boolean;
}

const sha256 = (value: string | Buffer): Buffer => createHash('sha256').update(value).digest();

/** Constant-time equality of two SHA-256 digests. */
function sameDigest(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

interface Verifier {
  required: boolean;
  challenge: string;
  apiKey(presented: string): { index: number; id: string; admin: boolean } | undefined;
  basic(username: string, password: string): string | undefined;
}

function verifierFor(settings: AccessSettings): Verifier {
  const keys = [
    ...settings.apiKeys.map((key, position) => ({ digest: sha256(key), admin: false, position })),
    ...(settings.adminKeys ?? []).map((key, position) => ({ digest: sha256(key), admin: true, position })),
  ];
  const users = settings.basicUsers.map((u) => ({
    name: u.username,
    user: sha256(u.username),
    pass: u.secret.kind === 'plain' ? sha256(u.secret.password) : Buffer.from(u.secret.hex, 'hex'),
  }));
  const challenges: string[] = [];
  if (keys.length > 0) challenges.push(`Bearer realm="${REALM}"`);
  if (users.length > 0) challenges.push(`Basic realm="${REALM}", charset="UTF-8"`);
  return {
    required: keys.length > 0 || users.length > 0,
    challenge: challenges.join(', '),
    apiKey(presented) {
      const digest = sha256(presented);
      let match: { index: number; id: string; admin: boolean } | undefined;
      keys.forEach((key) => {
        if (sameDigest(key.digest, digest) && match === undefined) {
          match = { index: key.position, id: `key:${key.digest.toString('hex').slice(0, 12)}`, admin: key.admin };
        }
      });
      return match;
    },
    basic(username, password) {
      const user = sha256(username);
      const pass = sha256(password);
      let match: string | undefined;
      for (const u of users) {
        // Both comparisons always run: a right name with a wrong password costs the same as a wrong name.
        const nameOk = sameDigest(u.user, user);
        const passOk = sameDigest(u.pass, pass);
        if (nameOk && passOk && match === undefined) match = u.name;
      }
      return match;
    },
  };
}

function unauthorized(message: string, challenge: string): GatewayError {
  return new GatewayError('UNAUTHORIZED', message, {
    headers: { 'WWW-Authenticate': challenge },
  });
}

/** Who the caller is, or the 401 to answer. Exported for tests and future transports. */
function authenticate(
  verifier: Verifier,
  headers: { authorization?: string | undefined; apiKey?: string | undefined },
): Caller | GatewayError {
  const rejected = (): GatewayError =>
    unauthorized('The credentials are not valid for this gateway', verifier.challenge);
  if (headers.apiKey !== undefined) {
    const key = verifier.apiKey(headers.apiKey.trim());
    return key === undefined ? rejected() : keyCaller(key, false);
  }
  const authorization = headers.authorization?.trim();
  if (!authorization) {
    return unauthorized(
      'Authentication required: send an API key (Authorization: Bearer <key> or X-Api-Key) or HTTP Basic credentials',
      verifier.challenge,
    );
  }
  const space = authorization.indexOf(' ');
  const scheme = (space < 0 ? authorization : authorization.slice(0, space)).toLowerCase();
  const value = space < 0 ? '' : authorization.slice(space + 1).trim();
  if (scheme === 'bearer') {
    const key = verifier.apiKey(value);
    return key === undefined ? rejected() : keyCaller(key, true);
  }
  if (scheme === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return rejected();
    const name = verifier.basic(decoded.slice(0, colon), decoded.slice(colon + 1));
    if (name === undefined) return rejected();
    return { method: 'basic', name, id: `basic:${name}`, admin: false, consumedAuthorization: true };
  }
  return rejected();
}

function keyCaller(key: { index: number; id: string; admin: boolean }, consumedAuthorization: boolean): Caller {
  const name = key.admin ? `admin-key#${key.index + 1}` : `key#${key.index + 1}`;
  return { method: 'api-key', name, id: key.id, admin: key.admin, consumedAuthorization };
}

/**
 * Express middleware: lets authenticated callers through (res.locals.caller),
 * answers 401 otherwise. A no-op when no caller credentials are configured
 * (config refuses that combination when the gateway holds Imagicle's
 * credentials, unless ALLOW_ANONYMOUS=true).
 */
export function createAccessControl(settings: AccessSettings, throttle?: LoginThrottle): RequestHandler {
  const verifier = verifierFor(settings);
  if (!verifier.required) return (_req, _res, next) => next();
  return (req: Request, res: Response, next: NextFunction) => {
    const outcome = authenticate(verifier, { authorization: req.get('authorization'), apiKey: req.get('x-api-key') });
    if (outcome instanceof GatewayError) {
      // Wrong credentials (not a request without any) count as a failed login; too many from this address get
      // 429 + Retry-After instead of 401 (http/login-throttle.ts).
      const presented = req.get('authorization') !== undefined || req.get('x-api-key') !== undefined;
      // req.ip: the socket's address, or the client's as a trusted proxy says it (TRUST_PROXY).
      next((presented ? throttle?.fail(req.ip ?? req.socket.remoteAddress ?? 'unknown') : undefined) ?? outcome);
      return;
    }
    res.locals.caller = outcome;
    next();
  };
}

/** The caller's Authorization header when it may go to Imagicle: not when it was the gateway credential. */
export function forwardableAuthorization(req: Request, res: Response): string | undefined {
  const caller = res.locals.caller as Caller | undefined;
  return caller?.consumedAuthorization ? undefined : req.get('authorization');
}
