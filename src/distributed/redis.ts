/**
 * Redis for the distributed mode: connection options from QUEUE_URL, a
 * readiness ping, and the startup check of the settings that keep a 202
 * true (docs/scaling.md, "Redis durability").
 */
import type { RedisOptions } from 'bullmq';
import type { Logger } from '../logger.js';

export function redisOptionsFrom(queueUrl: string): RedisOptions {
  const url = new URL(queueUrl);
  const db = url.pathname.replace(/^\//, '');
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : 6379,
    ...(db ? { db: Number(db) } : {}),
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
    // Reconnect for ever, backing off to 2 s: a Redis restart must not end a worker.
    retryStrategy: (times: number) => Math.min(2000, 50 * times),
  };
}

/** Something that runs a Redis command (BullMQ's client, ioredis). */
export interface CommandRunner {
  call(command: string, ...args: string[]): Promise<unknown>;
}

export interface DurabilityReport {
  appendonly: string | undefined;
  appendfsync: string | undefined;
  maxmemoryPolicy: string | undefined;
  problems: string[];
}

/**
 * What a 202 promises needs: every write on disk before Redis answers
 * (AOF, appendfsync always) and no job ever evicted (noeviction).
 */
async function checkDurability(redis: CommandRunner): Promise<DurabilityReport> {
  const get = async (name: string): Promise<string | undefined> => {
    try {
      const reply = (await redis.call('CONFIG', 'GET', name)) as unknown;
      return Array.isArray(reply) && typeof reply[1] === 'string' ? reply[1] : undefined;
    } catch {
      // Managed Redis services often refuse CONFIG: the settings cannot be checked, only documented.
      return undefined;
    }
  };
  const [appendonly, appendfsync, maxmemoryPolicy] = [
    await get('appendonly'),
    await get('appendfsync'),
    await get('maxmemory-policy'),
  ];
  const problems: string[] = [];
  if (appendonly === undefined) problems.push('CONFIG GET is not allowed: the persistence settings cannot be checked');
  else if (appendonly !== 'yes')
    problems.push(`appendonly is ${appendonly}: jobs accepted since the last snapshot are lost in a crash`);
  if (appendonly === 'yes' && appendfsync !== 'always') {
    problems.push(
      `appendfsync is ${appendfsync ?? 'unknown'}: up to a second of accepted jobs can be lost in a crash (want always)`,
    );
  }
  if (maxmemoryPolicy !== undefined && maxmemoryPolicy !== 'noeviction') {
    problems.push(
      `maxmemory-policy is ${maxmemoryPolicy}: Redis may evict jobs under memory pressure (want noeviction)`,
    );
  }
  return { appendonly, appendfsync, maxmemoryPolicy, problems };
}

export async function warnAboutDurability(redis: CommandRunner, log: Logger): Promise<DurabilityReport> {
  const report = await checkDurability(redis);
  if (report.problems.length > 0) {
    log.warn(
      {
        appendonly: report.appendonly,
        appendfsync: report.appendfsync,
        maxmemoryPolicy: report.maxmemoryPolicy,
        problems: report.problems,
      },
      'Redis is not configured to keep every accepted job (want appendonly yes, appendfsync always, maxmemory-policy noeviction)',
    );
  } else {
    log.info(
      { appendonly: 'yes', appendfsync: 'always', maxmemoryPolicy: 'noeviction' },
      'Redis durability settings checked',
    );
  }
  return report;
}

/** Rejects after `ms`: a Redis command must not hold a request (or /readyz) while Redis is away. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer from Redis within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
