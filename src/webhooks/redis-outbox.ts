/**
 * The webhook outbox of the distributed mode, in the queue's Redis (QUEUE_URL):
 *   <p>d:<id>      hash: `record` (the delivery as JSON), `state`
 *   <p>due         sorted set of pending ids by next attempt (ms); a claim moves
 *                  the score to the lease's end, so a dead dispatcher's delivery
 *                  comes back due by itself
 *   <p>age         sorted set of pending ids by creation (ms): the oldest pending
 *   <p>done        sorted set of finished ids by last change (ms): pruning
 *   <p>job:<jobId> set of the job's delivery ids
 * Every change is one script or one MULTI: a crash leaves no half-added delivery.
 * Redis must persist every write (AOF, appendfsync always: docs/scaling.md).
 */
import { Redis } from 'ioredis';
import type { WebhookDelivery } from './delivery.js';
import type { WebhookOutbox } from './outbox.js';

const DEFAULT_PREFIX = 'imagicle-gateway:webhooks:';

/** KEYS: record, due, age, job set. ARGV: id, json, state, nextAt, createdAt. 1 when added, 0 when already there. */
const ADD_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'record', ARGV[2], 'state', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
return 1`;

/** KEYS: due. ARGV: now, limit, leaseEnd. The ids claimed (their score moved to the lease's end). */
const CLAIM_SCRIPT = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[3], id) end
return ids`;

export class RedisOutbox implements WebhookOutbox {
  private constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly owned: boolean,
  ) {}

  /** `connection`: a URL (a connection of its own, closed by close()) or an ioredis client to share. */
  static async open(connection: string | Redis, prefix = DEFAULT_PREFIX): Promise<RedisOutbox> {
    const owned = typeof connection === 'string';
    const redis =
      typeof connection === 'string'
        ? new Redis(connection, { maxRetriesPerRequest: null, retryStrategy: (n) => Math.min(2000, 50 * n) })
        : connection;
    // Connection errors surface as failed commands (logged by the dispatcher); ioredis reconnects by itself.
    if (owned) redis.on('error', () => undefined);
    await redis.ping();
    return new RedisOutbox(redis, prefix, owned);
  }

  private key(name: string): string {
    return `${this.prefix}${name}`;
  }

  async add(deliveries: readonly WebhookDelivery[]): Promise<WebhookDelivery[]> {
    const added: WebhookDelivery[] = [];
    for (const d of deliveries) {
      const result = await this.redis.eval(
        ADD_SCRIPT,
        4,
        this.key(`d:${d.id}`),
        this.key('due'),
        this.key('age'),
        this.key(`job:${d.jobId}`),
        d.id,
        JSON.stringify(d),
        d.state,
        String(Date.parse(d.nextAttemptAt ?? d.createdAt)),
        String(Date.parse(d.createdAt)),
      );
      if (result === 1) added.push(d);
    }
    return added;
  }

  async claimDue(now: number, limit: number, leaseMs: number): Promise<WebhookDelivery[]> {
    const ids = (await this.redis.eval(
      CLAIM_SCRIPT,
      1,
      this.key('due'),
      String(now),
      String(limit),
      String(now + leaseMs),
    )) as string[];
    const found = await Promise.all(ids.map((id) => this.get(id)));
    const claimed: WebhookDelivery[] = [];
    for (const [i, d] of found.entries()) {
      // Finished meanwhile by another process (or its record lost): not to be sent; drop the stale entry.
      if (!d || d.state !== 'pending') await this.redis.zrem(this.key('due'), ids[i]!);
      else claimed.push(d);
    }
    return claimed;
  }

  async save(d: WebhookDelivery): Promise<void> {
    const tx = this.redis.multi().hset(this.key(`d:${d.id}`), 'record', JSON.stringify(d), 'state', d.state);
    if (d.state === 'pending') {
      tx.zadd(this.key('due'), Date.parse(d.nextAttemptAt ?? d.updatedAt), d.id)
        .zadd(this.key('age'), Date.parse(d.createdAt), d.id)
        .zrem(this.key('done'), d.id);
    } else {
      tx.zrem(this.key('due'), d.id).zrem(this.key('age'), d.id).zadd(this.key('done'), Date.parse(d.updatedAt), d.id);
    }
    tx.sadd(this.key(`job:${d.jobId}`), d.id);
    const results = await tx.exec();
    const failed = results?.find(([error]) => error);
    if (failed) throw failed[0];
  }

  async get(id: string): Promise<WebhookDelivery | undefined> {
    const json = await this.redis.hget(this.key(`d:${id}`), 'record');
    return json ? (JSON.parse(json) as WebhookDelivery) : undefined;
  }

  async forJob(jobId: string): Promise<WebhookDelivery[]> {
    const ids = await this.redis.smembers(this.key(`job:${jobId}`));
    const found = await Promise.all(ids.map((id) => this.get(id)));
    return found
      .filter((d): d is WebhookDelivery => d !== undefined)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async nextDueAt(): Promise<number | undefined> {
    const first = await this.redis.zrange(this.key('due'), 0, 0, 'WITHSCORES');
    return first.length === 2 ? Number(first[1]) : undefined;
  }

  async oldestPendingAt(): Promise<number | undefined> {
    const first = await this.redis.zrange(this.key('age'), 0, 0, 'WITHSCORES');
    return first.length === 2 ? Number(first[1]) : undefined;
  }

  async prune(before: number): Promise<number> {
    const ids = await this.redis.zrangebyscore(this.key('done'), '-inf', `(${before}`, 'LIMIT', 0, 1000);
    for (const id of ids) {
      const d = await this.get(id);
      const tx = this.redis
        .multi()
        .del(this.key(`d:${id}`))
        .zrem(this.key('done'), id);
      if (d) tx.srem(this.key(`job:${d.jobId}`), id);
      await tx.exec();
    }
    return ids.length;
  }

  async close(): Promise<void> {
    if (this.owned) await this.redis.quit().catch(() => undefined);
  }
}
