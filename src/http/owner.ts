/**
 * Who owns a job: every spooled job, duplicate key and jobs-API action
 * belongs to the caller that made it. The owner is a stable, non-secret
 * string:
 *   key:<12 hex>         an API key (start of its SHA-256)
 *   basic:<user>         an HTTP Basic user of GATEWAY_BASIC_USERS
 *   anonymous            no gateway credentials (an open gateway)
 * followed by `+auth:<16 hex>` (start of the SHA-256 of the header) when the
 * caller's own Authorization is forwarded to Imagicle: two callers sending
 * different Imagicle credentials through an open gateway are two owners, and
 * a caller without credentials never acts with someone else's.
 */
import { createHash } from 'node:crypto';
import type { Request, Response } from 'express';
import { forwardableAuthorization, type Caller } from './auth.js';

export interface Owner {
  id: string;
  /** An operator (GATEWAY_ADMIN_KEYS): may see and act on every owner's jobs. */
  admin: boolean;
}

const ANONYMOUS = 'anonymous';

const digest = (value: string, hexDigits: number): string =>
  createHash('sha256').update(value).digest('hex').slice(0, hexDigits);

function ownerOf(caller: Caller | undefined, forwardedAuthorization: string | undefined): Owner {
  const base = caller?.id ?? ANONYMOUS;
  const forwarded = forwardedAuthorization?.trim();
  return { id: forwarded ? `${base}+auth:${digest(forwarded, 16)}` : base, admin: caller?.admin ?? false };
}

/** The owner of a request (after the access control ran). */
export function requestOwner(req: Request, res: Response): Owner {
  return ownerOf(res.locals.caller as Caller | undefined, forwardableAuthorization(req, res));
}

/** An operator sees everything; anyone else only what they own (jobs from before owners existed: operators only). */
export function mayAccess(owner: Owner, jobOwner: string | undefined): boolean {
  return owner.admin || (jobOwner !== undefined && jobOwner === owner.id);
}
