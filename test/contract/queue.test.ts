/**
 * The JobStore contract over the BullMQ queue store (distributed mode), on a private redis-server. Each
 * claimant is a manual BullMQ fetch with its own lock token, kept alive as the worker keeps its lock; a holder
 * that dies stops renewing it, and BullMQ's stalled check hands the job over.
 */
import { afterAll, beforeAll } from 'vitest';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { JobFolders } from '../../src/delivery/blob-store.js';
import { JobLife, newJobRecord } from '../../src/delivery/job-life.js';
import { JOB_NAME, jobsRoot, QUEUE_NAME, type DistributedJob } from '../../src/distributed/job-data.js';
import { queueJobsBackend, shownRecord } from '../../src/distributed/queue-jobs.js';
import { QueueIndex } from '../../src/distributed/queue-index.js';
import { purgeFinishedJobs } from '../../src/distributed/queue-retention.js';
import { holdQueuedJob } from '../../src/distributed/queue-store.js';
import { dueAt } from '../../src/distributed/worker.js';
import { redisOptionsFrom } from '../../src/distributed/redis.js';
import { redisUnavailable, TestRedis } from '../helpers/redis.js';
import {
  FAST_LIFE_POLICY,
  initFor,
  jobStoreContract,
  RETENTION,
  silentLog,
  type Claim,
  type StoreHarness,
} from './job-store.contract.js';

const unavailable = redisUnavailable();
if (unavailable) process.stdout.write(`test/contract/queue.test.ts skipped: ${unavailable}\n`);

/** Short, so that a holder that dies is taken over within a second or two. */
const LOCK_MS = 600;

let redis: TestRedis | undefined;
beforeAll(async () => {
  if (!unavailable) redis = await TestRedis.start();
});
afterAll(async () => {
  await redis?.stop();
});

async function openQueue(): Promise<StoreHarness> {
  const connection = redisOptionsFrom(redis!.url);
  const admin = new Redis({ ...connection, maxRetriesPerRequest: 1 });
  await admin.flushall();
  const root = await mkdtemp(path.join(os.tmpdir(), 'contract-queue-'));
  const folders = new JobFolders(jobsRoot(path.join(root, 'blob')));
  await mkdir(folders.root, { recursive: true });
  const queue = new Queue<DistributedJob>(QUEUE_NAME, { connection });
  const worker = new Worker<DistributedJob>(QUEUE_NAME, null, {
    connection,
    autorun: false,
    lockDuration: LOCK_MS,
    stalledInterval: LOCK_MS,
    maxStalledCount: 5,
  });
  const index = new QueueIndex(() => Promise.resolve(admin));
  const life = new JobLife({ workerPolicy: FAST_LIFE_POLICY, maxAgeMs: 60_000 }, { log: silentLog });
  const renewals = new Set<NodeJS.Timeout>();
  let stalledCheck = false;

  const claimOf = async (bjob: Job<DistributedJob>, token: string): Promise<Claim> => {
    const { store, job } = await holdQueuedJob(bjob, token, folders, LOCK_MS, index);
    // The worker's lock renewal, while the holder lives.
    const renewal = setInterval(() => void bjob.extendLock(token, LOCK_MS).catch(() => undefined), LOCK_MS / 3);
    renewals.add(renewal);
    const stop = (): void => {
      clearInterval(renewal);
      renewals.delete(renewal);
    };
    return {
      job,
      store,
      stop,
      async release() {
        stop();
        // As distributed/worker.ts ends a run: completed, failed (unrecoverable), or delayed until it is due.
        if (job.state === 'delivered') await bjob.moveToCompleted({ delivered: true }, token, false);
        else if (job.state === 'failed') {
          await bjob.removeDeduplicationKey();
          await bjob.moveToFailed(new UnrecoverableError(job.lastError?.message ?? 'failed'), token, false);
        } else await bjob.moveToDelayed(dueAt(job), token);
      },
    } as Claim & { stop(): void };
  };

  return {
    life,
    retention: RETENTION,
    async create(spec) {
      const id = randomUUID();
      const inputs = await folders.storeInputs(id, { attachment: await upload(root, id) });
      // As the intake enqueues (distributed/intake.ts).
      const job: DistributedJob = {
        ...newJobRecord(initFor(spec), inputs, new Date(), id),
        owner: spec.owner,
        firstAttemptAt: undefined,
        rendered: undefined,
      };
      await queue.add(JOB_NAME, job, { jobId: id, removeOnComplete: false, removeOnFail: false });
      await index.record(job);
      return job;
    },
    async take() {
      const token = randomUUID();
      const bjob = await worker.getNextJob(token, { block: false });
      return bjob ? claimOf(bjob, token) : undefined;
    },
    async read(id) {
      const bjob = await queue.getJob(id);
      return bjob?.data?.id ? shownRecord(bjob, (await bjob.getState()) === 'failed') : undefined;
    },
    async abandon(claim) {
      (claim as Claim & { stop(): void }).stop();
      if (!stalledCheck) {
        stalledCheck = true;
        await worker.startStalledCheckTimer();
      }
      const deadline = Date.now() + 10_000;
      for (;;) {
        const state = await queue.getJobState(claim.job.id);
        if (state !== 'active') return;
        if (Date.now() > deadline) throw new Error(`job ${claim.job.id} was never put back after its holder died`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    backend: queueJobsBackend(queue, index, folders, life),
    purge: (now) => purgeFinishedJobs(queue, folders, index, RETENTION, now),
    async close() {
      for (const renewal of renewals) clearInterval(renewal);
      await worker.close(true);
      await queue.close();
      admin.disconnect();
      await rm(root, { recursive: true, force: true });
    },
  };
}

async function upload(root: string, name: string): Promise<{ path: string; originalName: string; extension: string }> {
  const file = path.join(root, `upload-${name}.wav`);
  await writeFile(file, Buffer.alloc(1000, 7));
  return { path: file, originalName: 'a.wav', extension: 'wav' };
}

jobStoreContract({
  name: 'BullMQ queue store',
  declines: {
    dueOldestFirst:
      "BullMQ hands out due jobs in the order they came due (its delayed set, then the wait list), not in acceptance order; several workers take jobs at once, so the queue promises each job's due time, not a global order",
  },
  open: openQueue,
  unavailable,
});
