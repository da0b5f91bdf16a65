/**
 * Who owns a job: the one place that derives it from a request, so that the
 * jobs API and duplicate suppression agree. An authenticated caller is its
 * API key or Basic user; a forwarded Authorization (the caller's Imagicle
 * credentials) adds its digest, so two Imagicle users behind one key do not
 * see each other's jobs. Anonymous callers share one owner.
 */
import { createHash } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Caller } from './auth.js';
import { forwardableAuthorization } from './auth.js';

export interface Ownership {
  owner: string;
  /** Sees every owner's jobs. No admin keys exist yet: every caller sees only its own. */
  admin: boolean;
}

export function ownershipOf(req: Request, res: Response): Ownership {
  const caller = res.locals.caller as Caller | undefined;
  const forwarded = forwardableAuthorization(req, res);
  const who = caller ? `${caller.method}:${caller.name}` : 'anonymous';
  const digest = forwarded ? `+auth:${createHash('sha256').update(forwarded).digest('hex').slice(0, 16)}` : '';
  return { owner: `${who}${digest}`, admin: false };
}
