/**
 * The configuration's checks across settings (config.ts reports them with the schema's own problems): access
 * control and upstream TLS, and the distributed mode's settings, which only make sense together.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseApiKeys, parseBasicUsers } from './access.js';

/** The settings distributedProblems reads (parsed). */
interface DistributedSettings {
  QUEUE_URL?: string | undefined;
  BLOB_DIR?: string | undefined;
  ROLE: string;
  DELIVERY: string;
}

/** A boolean setting as config.ts's schema reads it (anything else is the schema's own problem). */
const flag = (value: string | undefined): boolean => value === 'true' || value === '1' || value === 'yes';

/** Access control and upstream TLS: checked together, reported with everything else. Never prints a secret. */
export function hardeningProblems(e: Record<string, string | undefined>): string[] {
  const problems: string[] = [];
  const allowAnonymous = flag(e.ALLOW_ANONYMOUS);
  const insecure = flag(e.IMAGICLE_TLS_INSECURE);
  const keys = parseApiKeys(e.GATEWAY_API_KEYS ?? '');
  const users = parseBasicUsers(e.GATEWAY_BASIC_USERS ?? '');
  problems.push(...keys.problems.map((p) => `GATEWAY_API_KEYS: ${p}`));
  problems.push(...users.problems.map((p) => `GATEWAY_BASIC_USERS: ${p}`));
  const admins = parseApiKeys(e.GATEWAY_ADMIN_KEYS ?? '');
  problems.push(...admins.problems.map((p) => `GATEWAY_ADMIN_KEYS: ${p}`));
  const callerAuth = keys.keys.length > 0 || users.users.length > 0 || admins.keys.length > 0;
  if (
    e.IMAGICLE_USERNAME !== undefined &&
    !callerAuth &&
    !allowAnonymous &&
    keys.problems.length + users.problems.length === 0
  ) {
    problems.push(
      'GATEWAY_API_KEYS or GATEWAY_BASIC_USERS: required when IMAGICLE_USERNAME/IMAGICLE_PASSWORD are set, or anyone who reaches the gateway can post to Imagicle with its credentials (set ALLOW_ANONYMOUS=true to accept that)',
    );
  }
  if (allowAnonymous && callerAuth) {
    problems.push('ALLOW_ANONYMOUS: cannot be true while GATEWAY_API_KEYS or GATEWAY_BASIC_USERS are set');
  }
  if (e.IMAGICLE_URL !== undefined && /^https?:\/\/[^/]*@/i.test(e.IMAGICLE_URL)) {
    problems.push('IMAGICLE_URL: must not contain credentials; use IMAGICLE_USERNAME and IMAGICLE_PASSWORD');
  }
  if (e.IMAGICLE_CA_FILE !== undefined) {
    if (insecure) problems.push('IMAGICLE_CA_FILE and IMAGICLE_TLS_INSECURE: set one or the other');
    try {
      const pem = readFileSync(path.resolve(e.IMAGICLE_CA_FILE), 'utf8');
      if (!pem.includes('-----BEGIN CERTIFICATE-----'))
        problems.push(`IMAGICLE_CA_FILE: ${e.IMAGICLE_CA_FILE} holds no PEM certificate`);
    } catch (error) {
      problems.push(
        `IMAGICLE_CA_FILE: cannot read ${e.IMAGICLE_CA_FILE} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  }
  return problems;
}

/** QUEUE_URL, BLOB_DIR and ROLE make sense only together, and only with the spooled delivery. */
export function distributedProblems(e: DistributedSettings): string[] {
  const problems: string[] = [];
  if (e.QUEUE_URL === undefined) {
    if (e.BLOB_DIR !== undefined) problems.push('BLOB_DIR: only used with QUEUE_URL (the distributed mode)');
    if (e.ROLE !== 'all') problems.push('ROLE: api and worker need QUEUE_URL (the distributed mode)');
    return problems;
  }
  if (e.BLOB_DIR === undefined) {
    problems.push('BLOB_DIR: required with QUEUE_URL: a folder every process shares (NFS, EFS, SMB, RWX volume)');
  }
  if (e.DELIVERY !== 'wait') {
    problems.push(
      'DELIVERY: the distributed mode (QUEUE_URL) delivers through the queue; DELIVERY=sync cannot be combined with it',
    );
  }
  return problems;
}
