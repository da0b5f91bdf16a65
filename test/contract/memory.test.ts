/** The JobStore contract over the in-memory store (DELIVERY=sync, the file doors' one call). */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { memoryJob, memoryJobLife, MemoryJobStore } from '../../src/delivery/memory-store.js';
import type { JobRecord } from '../../src/delivery/job.js';
import { initFor, jobStoreContract, RETENTION, silentLog, type StoreHarness } from './job-store.contract.js';

async function openMemory(): Promise<StoreHarness> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'contract-memory-'));
  const store = new MemoryJobStore(dir);
  const life = memoryJobLife(silentLog);
  // The store keeps nothing: its records are the callers' own objects, one per call, handed to that call once.
  const calls: Array<{ job: JobRecord; taken: boolean }> = [];
  return {
    life,
    retention: RETENTION,
    async create(spec) {
      const id = randomUUID();
      const file = path.join(dir, `input-${id}.wav`);
      await writeFile(file, Buffer.alloc(1000, 7));
      const job = memoryJob(
        dir,
        { ...initFor(spec), owner: spec.owner },
        { attachment: { path: file, originalName: 'a.wav', extension: 'wav' } },
        id,
      );
      await store.save(job);
      calls.push({ job, taken: false });
      return job;
    },
    take() {
      const call = calls.find((c) => !c.taken);
      if (!call) return Promise.resolve(undefined);
      call.taken = true;
      return Promise.resolve({ job: call.job, store, release: () => Promise.resolve() });
    },
    read: (id) => Promise.resolve(calls.find((c) => c.job.id === id)?.job),
    async close() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const ONE_CALL = 'a job lives for one call (DELIVERY=sync, an import or watch run) in memory';
jobStoreContract({
  name: 'memory store',
  declines: {
    claims: `${ONE_CALL}: its one caller holds it from start to end, no second claimant exists`,
    leaseLoss: `${ONE_CALL}: the caller's hold cannot be lost (confirmLease always passes)`,
    crashRecovery: `${ONE_CALL}: nothing is kept, and when the process dies its caller has no answer and still holds the recording`,
    retrySchedule: `${ONE_CALL}: never scheduled for later; the caller retries within the call (memoryJobLife)`,
    dueOldestFirst: `${ONE_CALL}: nothing waits to be due, so there is no order among due jobs`,
    ownerScoping: `${ONE_CALL}: never listed or served by the jobs API, so no other owner can ask for it`,
    paging: `${ONE_CALL}: never listed by the jobs API`,
    retention: `${ONE_CALL}: its folder is removed by its caller when the call ends`,
  },
  open: openMemory,
});
