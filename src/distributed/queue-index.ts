/**
 * The jobs API's indexes in Redis, beside BullMQ's own keys, written with
 * every save of a job (QueueJobStore, the intake) so that no request reads
 * "the newest 1000 jobs" and filters afterwards:
 *   <p>o:<owner>           sorted set: the owner's jobs by acceptance time
 *   <p>s:<state>:<owner>   sorted set: the owner's jobs in that state
 *   <p>k:<word>            set: jobs found by a pbxCallId, phone number, username or Imagicle id
 * each also under the owner "*" (an operator's view). Entries of jobs that
 * BullMQ's retention removed are dropped when a read meets them.
 */
import type { Redis } from 'ioredis';
import { emptyCounts, inRange, searchKeysOf, type JobPage, type JobQuery } from '../delivery/job-index.js';
import { JOB_STATES, type JobRecord } from '../delivery/job.js';

const PREFIX = 'igw:jobs:';
const EVERYONE = '*';

const ownerKey = (owner: string): string => `${PREFIX}o:${owner}`;
const stateKey = (state: string, owner: string): string => `${PREFIX}s:${state}:${owner}`;
const wordKey = (word: string): string => `${PREFIX}k:${word}`;

/** A score unique enough for paging: acceptance time in µs, plus a per-id offset below a millisecond. */
function scoreOf(job: JobRecord): number {
  let h = 0;
  for (const c of job.id) h = (h * 31 + c.charCodeAt(0)) % 1000;
  return Date.parse(job.createdAt) * 1000 + h;
}

export class QueueIndex {
  constructor(private readonly redis: () => Promise<Redis>) {}

  async record(job: JobRecord): Promise<void> {
    const redis = await this.redis();
    const score = scoreOf(job);
    const owners = [job.owner ?? '', EVERYONE];
    const multi = redis.multi();
    for (const owner of owners) {
      multi.zadd(ownerKey(owner), score, job.id);
      for (const state of JOB_STATES) {
        if (state === job.state) multi.zadd(stateKey(state, owner), score, job.id);
        else multi.zrem(stateKey(state, owner), job.id);
      }
    }
    for (const word of searchKeysOf(job)) multi.sadd(wordKey(word), job.id);
    await multi.exec();
  }

  async forget(job: JobRecord): Promise<void> {
    const redis = await this.redis();
    const multi = redis.multi();
    for (const owner of [job.owner ?? '', EVERYONE]) {
      multi.zrem(ownerKey(owner), job.id);
      for (const state of JOB_STATES) multi.zrem(stateKey(state, owner), job.id);
    }
    for (const word of searchKeysOf(job)) multi.srem(wordKey(word), job.id);
    await multi.exec();
  }

  /** One page newest first; `load` reads a job (undefined: gone, its entries are dropped). */
  async page(query: JobQuery, load: (id: string) => Promise<JobRecord | undefined>): Promise<JobPage> {
    const redis = await this.redis();
    const owner = query.owner ?? EVERYONE;
    const visible = (job: JobRecord): boolean =>
      (query.owner === undefined || job.owner === query.owner) &&
      (query.door === undefined || (job.door ?? 'http') === query.door) &&
      inRange(job, query.fromMs, query.toMs);
    const filtered =
      query.q !== undefined || query.door !== undefined || query.fromMs !== undefined || query.toMs !== undefined;
    const before = query.cursor !== undefined ? Number.parseInt(query.cursor, 36) : Infinity;

    if (filtered) {
      // A search names few jobs; door and time filters read the owner's set in batches.
      const ids =
        query.q !== undefined ? await redis.smembers(wordKey(query.q)) : await redis.zrevrange(ownerKey(owner), 0, -1);
      const jobs: { job: JobRecord; score: number }[] = [];
      for (const id of ids) {
        const job = await load(id);
        if (!job) {
          await this.dropId(redis, id, owner);
          continue;
        }
        if (visible(job)) jobs.push({ job, score: scoreOf(job) });
      }
      jobs.sort((a, b) => b.score - a.score);
      const counts = emptyCounts();
      for (const { job } of jobs) counts[job.state] += 1;
      const inState = jobs.filter(
        ({ job, score }) => score < before && (query.state === undefined || job.state === query.state),
      );
      const page = inState.slice(0, query.limit);
      const nextCursor = inState.length > query.limit ? page.at(-1)!.score.toString(36) : null;
      return { jobs: page.map((j) => j.job), nextCursor, counts };
    }

    const key = query.state !== undefined ? stateKey(query.state, owner) : ownerKey(owner);
    const jobs: JobRecord[] = [];
    let max = Number.isFinite(before) ? `(${before}` : '+inf';
    let nextCursor: string | null = null;
    for (let rounds = 0; jobs.length < query.limit && rounds < 20; rounds++) {
      const want = query.limit - jobs.length + 1;
      const batch = await redis.zrevrangebyscore(key, max, '-inf', 'WITHSCORES', 'LIMIT', 0, want);
      if (batch.length === 0) break;
      for (let i = 0; i < batch.length; i += 2) {
        const id = batch[i]!;
        const score = Number(batch[i + 1]);
        max = `(${score}`;
        if (jobs.length === query.limit) {
          nextCursor = scoreOf(jobs.at(-1)!).toString(36);
          break;
        }
        const job = await load(id);
        if (!job) await this.dropId(redis, id, owner);
        else if (visible(job) && (query.state === undefined || job.state === query.state)) jobs.push(job);
      }
      if (nextCursor !== null || batch.length < want * 2) break;
    }
    const multi = redis.multi();
    for (const state of JOB_STATES) multi.zcard(stateKey(state, owner));
    const cards = (await multi.exec()) ?? [];
    const counts = emptyCounts();
    JOB_STATES.forEach((state, i) => (counts[state] = Number(cards[i]?.[1] ?? 0)));
    return { jobs, nextCursor, counts };
  }

  private async dropId(redis: Redis, id: string, owner: string): Promise<void> {
    const multi = redis.multi();
    for (const o of new Set([owner, EVERYONE])) {
      multi.zrem(ownerKey(o), id);
      for (const state of JOB_STATES) multi.zrem(stateKey(state, o), id);
    }
    await multi.exec();
  }
}
