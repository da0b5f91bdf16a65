/**
 * One JobStore contract, run unchanged against every store (tus-node-server's
 * shared store tests): the file spool, the in-memory store and the BullMQ
 * queue store (docs: DESIGN.md, "One job life"). Each store is driven through
 * a thin harness (StoreHarness) that maps its own API onto the same words
 * (take, release, a holder that dies, retention), and every transition is the
 * job-life module's: a test never sets a state itself.
 *
 * A store that does not offer a capability declares it with a reason; the
 * suite then checks the declaration (the harness really lacks the hook, or
 * the store's seam behaves as the reason says) instead of skipping.
 */
import { describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { GatewayError } from '../../src/errors.js';
import type { JobsBackend } from '../../src/delivery/jobs-backend.js';
import {
  beginAttempt,
  endAttempt,
  markRendered,
  recoverInterrupted,
  type JobLife,
  type JobRetention,
} from '../../src/delivery/job-life.js';
import type { JobReport } from '../../src/delivery/job-report.js';
import { LeaseLostError, type JobStore } from '../../src/delivery/job-store.js';
import type { JobDoor, JobInit, JobRecord, SpooledPart } from '../../src/delivery/job.js';
import type { RecordingMetadata } from '../../src/imagicle/schema.js';
import { SAMPLE_METADATA } from '../helpers/gateway.js';

export const CAPABILITIES = [
  'claims',
  'leaseLoss',
  'crashRecovery',
  'retrySchedule',
  /** Among jobs due at once, the oldest (first accepted) is handed out first (the spool's "oldest first"). */
  'dueOldestFirst',
  'ownerScoping',
  'paging',
  'retention',
] as const;
export type Capability = (typeof CAPABILITIES)[number];

/** A job held by one claimant (the spool's claim, BullMQ's lock). */
export interface Claim {
  job: JobRecord;
  store: JobStore;
  /** Lets the job go: back in the schedule as its record says (due at nextAttemptAt), or finished. */
  release(): Promise<void>;
}

export interface JobSpec {
  owner: string;
  door?: JobDoor | undefined;
  pbxCallId?: string | undefined;
}

export interface StoreHarness {
  /** The job-life module every transition goes through (a short worker backoff). */
  life: JobLife;
  /** Retention the store was opened with. */
  retention: JobRetention;
  /** A new job in state `received`, saved and not held by anyone. */
  create(spec: JobSpec): Promise<JobRecord>;
  /** A claimant takes the oldest due job, or none. */
  take(): Promise<Claim | undefined>;
  /** The record as stored now (an operator's read). */
  read(id: string): Promise<JobRecord | undefined>;
  /**
   * The holder of `claim` dies without letting go. Resolves once another claimant could take the job (the
   * spool: the process restarted; the queue: the holder's lock expired and the stalled check put the job back).
   */
  abandon?(claim: Claim): Promise<void>;
  /** The jobs API over this store (owner scoping, paging). */
  backend?: JobsBackend;
  /** Retention as of `now` (epoch ms): answers how many jobs went. */
  purge?(now: number): Promise<number>;
  close(): Promise<void>;
}

export interface StoreUnderTest {
  name: string;
  /** Capabilities this store does not offer, each with why. */
  declines: Partial<Record<Capability, string>>;
  open(): Promise<StoreHarness>;
  /** Why the whole store cannot be tested here (redis-server missing outside CI), or undefined. */
  unavailable?: string | undefined;
}

export const FAST_LIFE_POLICY = {
  maxAttempts: 1,
  minDelayMs: 200,
  factor: 1,
  maxDelayMs: 200,
  maxTotalMs: 1000,
  retryStatuses: [408, 429, 503],
  ambiguousStatuses: [500, 502, 504],
  retryAmbiguous: false,
};
export const RETENTION: JobRetention = { deliveredMs: 60_000, failedMs: 120_000 };
export const silentLog = pino({ level: 'silent' });

/** What a door decides about a job (job.ts JobInit), for the spec's owner, door and call. */
export function initFor(spec: JobSpec, maxAgeMs = 60_000): JobInit {
  return {
    mode: 'drop-in',
    door: spec.door,
    requestId: `req-${Math.random().toString(36).slice(2)}`,
    async: true,
    owner: spec.owner,
    expiresAt: new Date(Date.now() + maxAgeMs).toISOString(),
    metadata: { ...SAMPLE_METADATA, pbxCallId: spec.pbxCallId ?? 'call-0' } as RecordingMetadata,
    stereoOptions: undefined,
    callerAuthorization: undefined,
    dedupKey: undefined,
    audioSha256: undefined,
    contentType: undefined,
    decision: undefined,
  };
}

const REPORT: JobReport = {
  input: {
    format: 'wav',
    codec: 'pcm_s16le',
    sampleRate: 8000,
    channels: 1,
    bitsPerSample: 16,
    durationSeconds: 1,
    headerless: undefined,
  },
  decision: { action: 'pass-through', reasons: [] },
  output: {
    container: 'wav',
    codec: 'pcm_s16le',
    sampleRate: 8000,
    channels: 1,
    contentType: 'audio/wav',
    bytes: 16_044,
    duration: 'PT1S',
    durationSeconds: 1,
  },
  stereo: undefined,
};

/** The job rendered into one part (a small file in its folder), as run-job.ts leaves it: ready. */
async function render(claim: Claim, life: JobLife): Promise<SpooledPart> {
  const { job, store } = claim;
  const part: SpooledPart = {
    index: 1,
    count: 1,
    file: 'part-1.wav',
    bytes: 16_044,
    samples: 8000,
    sampleRate: 8000,
    durationSeconds: 1,
    isoDuration: 'PT1S',
    startOffsetSeconds: 0,
    filename: 'part-1.wav',
    metadata: {},
    state: 'pending',
    attempts: 0,
    upstream: undefined,
    deliveredAt: undefined,
  };
  await writeFile(path.join(store.jobDir(job.id), part.file), Buffer.alloc(part.bytes, 1));
  job.parts = [part];
  markRendered(job, 'audio/wav', 'pass-through', REPORT);
  await life.commit(store, job);
  return part;
}

/** One attempt that Imagicle's front refused with 503 (retry), committed. */
async function failedAttempt(claim: Claim, life: JobLife, part: SpooledPart): Promise<void> {
  beginAttempt(claim.job, part);
  await life.commit(claim.store, claim.job);
  const error = new GatewayError('UPSTREAM_UNREACHABLE', 'connection refused');
  endAttempt(claim.job, part, 'retry', { error }, Date.now() - 5);
  await life.commit(claim.store, claim.job);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Takes until a job comes (a retried job's due time, a stalled job put back), within `withinMs`. */
async function takeWithin(h: StoreHarness, withinMs: number): Promise<Claim | undefined> {
  const until = Date.now() + withinMs;
  for (;;) {
    const claim = await h.take();
    if (claim || Date.now() > until) return claim;
    await sleep(25);
  }
}

/** Creates `n` jobs one after the other (newest last), each with a distinct call id. */
async function createMany(h: StoreHarness, n: number, spec: JobSpec): Promise<JobRecord[]> {
  const jobs: JobRecord[] = [];
  for (let i = 0; i < n; i++) {
    jobs.push(await h.create({ ...spec, pbxCallId: `${spec.owner}-${i}` }));
    // Acceptance times a millisecond apart at least: "newest first" is by acceptance time.
    await sleep(2);
  }
  return jobs;
}

/** Takes the job with this id (others taken meanwhile are let go again). */
async function takeJob(h: StoreHarness, id: string): Promise<Claim> {
  const others: Claim[] = [];
  try {
    for (;;) {
      const claim = await takeWithin(h, 3000);
      if (!claim) throw new Error(`job ${id} was never handed out`);
      if (claim.job.id === id) return claim;
      others.push(claim);
    }
  } finally {
    for (const other of others) await other.release();
  }
}

const expectNotFound = async (p: Promise<unknown>): Promise<void> => {
  await expect(p).rejects.toMatchObject({ code: 'NOT_FOUND' });
};

/**
 * Two jobs retried: the older one with a longer wait (Retry-After: 1 s) than the newer one (the short
 * backoff); once both are due, answers the order they are handed out in.
 */
async function dueRace(h: StoreHarness): Promise<{ taken: (string | undefined)[]; older: string; newer: string }> {
  const older = await h.create({ owner: 'alpha', pbxCallId: 'older' });
  await sleep(5);
  const newer = await h.create({ owner: 'alpha', pbxCallId: 'newer' });
  const a = await takeJob(h, older.id);
  const b = await takeJob(h, newer.id);
  await h.life.scheduleRetry(a.store, a.job, '1');
  await h.life.scheduleRetry(b.store, b.job, undefined);
  await a.release();
  await b.release();
  await sleep(Date.parse(a.job.nextAttemptAt!) - Date.now() + 100);
  const first = await takeWithin(h, 3000);
  const second = await takeWithin(h, 3000);
  await first?.release();
  await second?.release();
  return { taken: [first?.job.id, second?.job.id], older: older.id, newer: newer.id };
}

/** The whole contract for one store. */
export function jobStoreContract(subject: StoreUnderTest): void {
  const offers = (c: Capability): boolean => subject.declines[c] === undefined;
  const group = (c: Capability, title: string, body: () => void): void => {
    const reason = subject.declines[c];
    if (reason === undefined) describe(title, body);
  };
  const withStore = (fn: (h: StoreHarness) => Promise<void>) => async () => {
    const h = await subject.open();
    try {
      await fn(h);
    } finally {
      await h.close();
    }
  };

  describe.skipIf(subject.unavailable !== undefined)(`JobStore contract: ${subject.name}`, () => {
    describe('declared capabilities', () => {
      for (const c of CAPABILITIES) {
        const reason = subject.declines[c];
        if (reason === undefined) continue;
        it(
          `does not offer ${c}: ${reason}`,
          withStore(async (h) => checkDeclared(c, reason, h, subject.declines)),
        );
      }
      it('offers or declares every capability of the contract', () => {
        for (const c of CAPABILITIES) expect(offers(c) || (subject.declines[c] ?? '').length > 20).toBe(true);
      });
    });

    it(
      'persists what job-life decides: a committed attempt reads back as it was decided',
      withStore(async (h) => {
        const created = await h.create({ owner: 'alpha' });
        expect(created.state).toBe('received');
        const claim = (await h.take())!;
        expect(claim.job.id).toBe(created.id);
        const part = await render(claim, h.life);
        await failedAttempt(claim, h.life, part);
        const stored = (await h.read(created.id))!;
        expect(stored.state).toBe('ready');
        expect(stored.attempts).toBe(1);
        expect(stored.parts.map((p) => [p.state, p.attempts])).toEqual([['pending', 1]]);
        expect(stored.history?.map((a) => a.verdict)).toEqual(['retry']);
        expect(stored.lastError?.code).toBe('UPSTREAM_UNREACHABLE');
        expect(Date.parse(stored.updatedAt)).toBeGreaterThanOrEqual(Date.parse(created.createdAt));
        await claim.release();
      }),
    );

    group('claims', 'claims and leases', () => {
      it(
        'a job one claimant holds is not handed to a second claimant',
        withStore(async (h) => {
          const job = await h.create({ owner: 'alpha' });
          const first = (await h.take())!;
          expect(first.job.id).toBe(job.id);
          expect(await h.take()).toBeUndefined();
          await first.store.confirmLease(first.job);
          await first.release();
          const again = await takeWithin(h, 3000);
          expect(again?.job.id).toBe(job.id);
          await again!.release();
        }),
      );

      it(
        'the jobs API does not remove a job a claimant holds (CONFLICT), and does once it is let go',
        withStore(async (h) => {
          const job = await h.create({ owner: 'alpha' });
          const claim = (await h.take())!;
          await expect(h.backend!.remove(job.id, 'alpha')).rejects.toMatchObject({ code: 'CONFLICT' });
          expect((await h.read(job.id))?.id).toBe(job.id);
          // Finished (failed), so it is let go for good, not put back in the schedule.
          await h.life.fail(claim.store, claim.job);
          await claim.release();
          await h.backend!.remove(job.id, 'alpha');
          expect(await h.read(job.id)).toBeUndefined();
          expect(existsSync(claim.store.jobDir(job.id))).toBe(false);
        }),
      );

      it(
        'a stale claim (its holder died) is taken over by another claimant',
        withStore(async (h) => {
          const job = await h.create({ owner: 'alpha' });
          const claim = (await h.take())!;
          await h.abandon!(claim);
          const taken = await takeWithin(h, 5000);
          expect(taken?.job.id).toBe(job.id);
          await taken!.store.confirmLease(taken!.job);
          await taken!.release();
        }),
      );
    });

    group('leaseLoss', 'a lost lease', () => {
      it(
        'confirmLease throws LeaseLostError once the holder lost its lease: no attempt is made without it',
        withStore(async (h) => {
          await h.create({ owner: 'alpha' });
          const claim = (await h.take())!;
          await h.abandon!(claim);
          await expect(claim.store.confirmLease(claim.job)).rejects.toBeInstanceOf(LeaseLostError);
        }),
      );
    });

    group('crashRecovery', 'crash recovery', () => {
      it(
        'a job mid-attempt when its holder dies comes back with its history, the attempt marked interrupted',
        withStore(async (h) => {
          const job = await h.create({ owner: 'alpha' });
          const claim = (await h.take())!;
          const part = await render(claim, h.life);
          await failedAttempt(claim, h.life, part);
          beginAttempt(claim.job, part);
          await h.life.commit(claim.store, claim.job);
          // What job-life's recovery decides for the record as it was last saved.
          const expected = structuredClone(claim.job);
          expect(recoverInterrupted(expected)).toBe(1);
          await h.abandon!(claim);

          const back = await takeJob(h, job.id);
          const got = back.job;
          expect(got.state).toBe(expected.state);
          expect(got.state).toBe('ready');
          expect(got.attempts).toBe(2);
          expect(got.history?.map((a) => a.verdict)).toEqual(['retry']);
          const [recovered] = got.parts;
          expect(recovered).toMatchObject({
            state: 'pending',
            attempts: 2,
            uncertainInterrupted: true,
            uncertainSince: expected.parts[0]!.uncertainSince,
          });
          expect((await h.read(job.id))?.parts[0]?.uncertainInterrupted).toBe(true);
          await back.release();
        }),
      );

      it(
        'a job its holder died with before any attempt comes back as it was: nothing uncertain',
        withStore(async (h) => {
          const job = await h.create({ owner: 'alpha' });
          const claim = (await h.take())!;
          await render(claim, h.life);
          await h.abandon!(claim);
          const back = await takeJob(h, job.id);
          expect(back.job.state).toBe('ready');
          expect(back.job.attempts).toBe(0);
          expect(back.job.parts[0]).toMatchObject({ state: 'pending', attempts: 0 });
          expect(back.job.parts[0]!.uncertainSince).toBeUndefined();
          expect(existsSync(path.join(back.store.jobDir(job.id), 'part-1.wav'))).toBe(true);
          await back.release();
        }),
      );
    });

    group('retrySchedule', 'retry scheduling', () => {
      it(
        'a retried job is not due before the time job-life set, and is due after it',
        withStore(async (h) => {
          const job = await h.create({ owner: 'alpha' });
          const claim = (await h.take())!;
          await h.life.scheduleRetry(claim.store, claim.job, '1');
          const due = Date.parse(claim.job.nextAttemptAt!);
          expect(due).toBeGreaterThanOrEqual(Date.now() + 500);
          await claim.release();
          expect(await h.take()).toBeUndefined();
          expect((await h.read(job.id))?.nextAttemptAt).toBe(claim.job.nextAttemptAt);
          const again = await takeWithin(h, due - Date.now() + 5000);
          expect(again?.job.id).toBe(job.id);
          // The store's clock may round to its own milliseconds; never early by more than that.
          expect(Date.now()).toBeGreaterThanOrEqual(due - 5);
          await again!.release();
        }),
      );
    });

    group('dueOldestFirst', 'due order', () => {
      it(
        'jobs that are due leave oldest first, whichever came due first',
        withStore(async (h) => {
          const { taken, older, newer } = await dueRace(h);
          expect(taken).toEqual([older, newer]);
        }),
      );
    });

    group('ownerScoping', 'owner scoping', () => {
      it(
        "one owner never sees, gets, retries or deletes another owner's job",
        withStore(async (h) => {
          const theirs = await h.create({ owner: 'beta', pbxCallId: 'secret' });
          const claim = (await h.take())!;
          await h.life.fail(claim.store, claim.job);
          await claim.release();
          const backend = h.backend!;
          expect(await backend.get(theirs.id, 'alpha')).toBeUndefined();
          await expectNotFound(backend.retry(theirs.id, 'alpha'));
          await expectNotFound(backend.remove(theirs.id, 'alpha'));
          const page = await backend.page({ owner: 'alpha', limit: 50 });
          expect(page.jobs).toEqual([]);
          expect(Object.values(page.counts).every((n) => n === 0)).toBe(true);
          const search = await backend.page({ owner: 'alpha', q: 'secret', limit: 50 });
          expect(search.jobs).toEqual([]);
          // Still there, and its owner and an operator see it.
          expect((await backend.get(theirs.id, 'beta'))?.state).toBe('failed');
          expect((await backend.get(theirs.id, undefined))?.id).toBe(theirs.id);
          expect((await backend.retry(theirs.id, 'beta')).state).toBe('received');
        }),
      );

      it(
        'an id of any shape that is not one of the caller\u2019s jobs is not found, never an error of the store',
        withStore(async (h) => {
          const mine = await h.create({ owner: 'alpha' });
          const odd = [
            'stalled-check',
            'events',
            'id',
            'completed',
            'failed',
            'meta',
            'wait',
            'delayed',
            '../jobs',
            '..',
            '',
            'x'.repeat(300),
            mine.id.toUpperCase(),
            `${mine.id}/..`,
            '00000000-0000-0000-0000-000000000000',
          ];
          for (const id of odd) {
            expect(await h.backend!.get(id, 'alpha'), id).toBeUndefined();
            expect(await h.backend!.get(id, undefined), id).toBeUndefined();
            await expectNotFound(h.backend!.retry(id, 'alpha'));
            await expectNotFound(h.backend!.remove(id, undefined));
          }
          expect((await h.backend!.get(mine.id, 'alpha'))?.id).toBe(mine.id);
        }),
      );
    });

    group('paging', 'paging', () => {
      it(
        'pages newest first with a cursor and a limit, every job once',
        withStore(async (h) => {
          const mine = await createMany(h, 7, { owner: 'alpha' });
          await createMany(h, 3, { owner: 'beta' });
          const seen: string[] = [];
          let cursor: string | undefined;
          const sizes: number[] = [];
          for (let i = 0; i < 5; i++) {
            const page = await h.backend!.page({ owner: 'alpha', limit: 3, cursor });
            sizes.push(page.jobs.length);
            seen.push(...page.jobs.map((j) => j.id));
            if (page.nextCursor === null) break;
            cursor = page.nextCursor;
          }
          expect(sizes).toEqual([3, 3, 1]);
          expect(seen).toEqual(mine.map((j) => j.id).reverse());
          const everyone = await h.backend!.page({ owner: undefined, limit: 100 });
          expect(everyone.jobs).toHaveLength(10);
        }),
      );

      it(
        "filters by state, door and q; counts per state are the owner's own, whatever other owners hold",
        withStore(async (h) => {
          const jobs = await createMany(h, 3, { owner: 'alpha' });
          const watched = await h.create({ owner: 'alpha', door: 'watch', pbxCallId: 'from-folder' });
          const claim = await takeJob(h, jobs[0]!.id);
          await h.life.fail(claim.store, claim.job);
          await claim.release();
          const before = (await h.backend!.page({ owner: 'alpha', limit: 1 })).counts;
          expect(before).toMatchObject({ received: 3, failed: 1, delivered: 0 });
          // Another owner's backlog changes nothing of alpha's counts.
          const theirs = await createMany(h, 6, { owner: 'beta' });
          const other = await takeJob(h, theirs[0]!.id);
          await h.life.fail(other.store, other.job);
          await other.release();
          expect((await h.backend!.page({ owner: 'alpha', limit: 1 })).counts).toEqual(before);

          const failed = await h.backend!.page({ owner: 'alpha', state: 'failed', limit: 50 });
          expect(failed.jobs.map((j) => j.id)).toEqual([jobs[0]!.id]);
          const byDoor = await h.backend!.page({ owner: 'alpha', door: 'watch', limit: 50 });
          expect(byDoor.jobs.map((j) => j.id)).toEqual([watched.id]);
          expect(byDoor.counts).toMatchObject({ received: 1, failed: 0 });
          const http = await h.backend!.page({ owner: 'alpha', door: 'http', limit: 50 });
          expect(http.jobs).toHaveLength(3);
          const byCall = await h.backend!.page({ owner: 'alpha', q: jobs[1]!.metadata.pbxCallId!, limit: 50 });
          expect(byCall.jobs.map((j) => j.id)).toEqual([jobs[1]!.id]);
          expect(byCall.counts).toMatchObject({ received: 1, failed: 0 });
        }),
      );
    });

    group('retention', 'retention', () => {
      it(
        'finished jobs go after their age (delivered, then failed, with their folders); open jobs never',
        withStore(async (h) => {
          const delivered = await h.create({ owner: 'alpha', pbxCallId: 'delivered' });
          const failed = await h.create({ owner: 'alpha', pbxCallId: 'failed' });
          const open = await h.create({ owner: 'alpha', pbxCallId: 'open' });
          const d = await takeJob(h, delivered.id);
          await h.life.deliver(d.store, d.job);
          await d.release();
          const f = await takeJob(h, failed.id);
          await h.life.fail(f.store, f.job);
          await f.release();
          const dir = (id: string): string => d.store.jobDir(id);
          const now = Date.now();

          expect(await h.purge!(now + 1000)).toBe(0);
          expect(await h.purge!(now + h.retention.deliveredMs + 1000)).toBe(1);
          expect(await h.read(delivered.id)).toBeUndefined();
          expect(existsSync(dir(delivered.id))).toBe(false);
          expect((await h.read(failed.id))?.state).toBe('failed');

          expect(await h.purge!(now + h.retention.failedMs + 1000)).toBe(1);
          expect(await h.read(failed.id)).toBeUndefined();
          expect(existsSync(dir(failed.id))).toBe(false);
          const listed = await h.backend!.page({ owner: 'alpha', limit: 50 });
          expect(listed.jobs.map((j) => j.id)).toEqual([open.id]);

          expect(await h.purge!(now + 100 * h.retention.failedMs)).toBe(0);
          expect((await h.read(open.id))?.state).toBe('received');
        }),
      );
    });
  });
}

/** A declined capability: the store's seam behaves as the reason says, or the harness lacks the hook. */
async function checkDeclared(
  c: Capability,
  reason: string,
  h: StoreHarness,
  declines: StoreUnderTest['declines'],
): Promise<void> {
  expect(reason.length).toBeGreaterThan(20);
  switch (c) {
    case 'claims':
    case 'crashRecovery':
      expect(h.abandon).toBeUndefined();
      return;
    case 'leaseLoss': {
      // The holder's lease cannot be lost: confirmLease passes for as long as the holder lives.
      await h.create({ owner: 'alpha' });
      const claim = (await h.take())!;
      await claim.store.confirmLease(claim.job);
      await claim.store.confirmLease(claim.job);
      await claim.release();
      return;
    }
    case 'dueOldestFirst':
      if (declines.retrySchedule === undefined) {
        // The store's own order instead: the job that came due first leaves first.
        const { taken, older, newer } = await dueRace(h);
        expect(taken).toEqual([newer, older]);
        return;
      }
    // falls through: nothing is ever due again, so there is no order among due jobs
    case 'retrySchedule': {
      // Nothing is scheduled for later: the job is handed out once, to its one caller.
      await h.create({ owner: 'alpha' });
      const claim = (await h.take())!;
      await h.life.scheduleRetry(claim.store, claim.job, undefined);
      await claim.release();
      expect(await h.take()).toBeUndefined();
      return;
    }
    case 'ownerScoping':
    case 'paging':
      expect(h.backend).toBeUndefined();
      return;
    case 'retention':
      expect(h.purge).toBeUndefined();
      return;
  }
}
