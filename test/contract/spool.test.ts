/** The JobStore contract over the file spool (SPOOL_DIR on a real file system). */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { JobLife } from '../../src/delivery/job-life.js';
import { Spool } from '../../src/delivery/spool.js';
import { spoolJobsBackend } from '../../src/delivery/spool-jobs.js';
import {
  FAST_LIFE_POLICY,
  initFor,
  jobStoreContract,
  RETENTION,
  silentLog,
  type Claim,
  type StoreHarness,
} from './job-store.contract.js';

async function openSpool(): Promise<StoreHarness> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'contract-spool-'));
  const options = {
    dir: path.join(root, 'spool'),
    deliveredRetentionMs: RETENTION.deliveredMs,
    failedRetentionMs: RETENTION.failedMs,
    logger: silentLog,
  };
  let { spool } = await Spool.open(options);
  const life = new JobLife({ workerPolicy: FAST_LIFE_POLICY, maxAgeMs: 60_000 }, { log: silentLog });
  // The jobs API reads the current spool: a restart (abandon) replaces it.
  const service = {
    get spool() {
      return spool;
    },
    life,
    wake: () => undefined,
    waveforms: undefined,
  };
  let uploads = 0;

  const claimOf = (id: string): Claim => {
    const job = spool.get(id)!;
    const held = spool;
    return {
      job,
      store: held,
      release: () => {
        // As the worker does after a run: the job back in the schedule as its record says, then let go.
        held.reschedule(job);
        held.release(id);
        return Promise.resolve();
      },
    };
  };

  return {
    life,
    retention: RETENTION,
    async create(spec) {
      const file = path.join(root, `upload-${++uploads}.wav`);
      await writeFile(file, Buffer.alloc(1000, 7));
      const job = await spool.create(initFor(spec), {
        attachment: { path: file, originalName: 'a.wav', extension: 'wav' },
      });
      spool.release(job.id);
      return job;
    },
    take() {
      const now = Date.now();
      const claim = (id: string): boolean => spool.claim(id);
      const id = spool.toDeliver.take(now, claim) ?? spool.toPrepare.take(now, claim);
      return Promise.resolve(id === undefined ? undefined : claimOf(id));
    },
    read: (id) => Promise.resolve(spool.get(id)),
    async abandon() {
      // The process dies: its claims (memory) go with it; the next process opens the same folder.
      await spool.close();
      ({ spool } = await Spool.open(options));
      await spool.pruned();
    },
    backend: spoolJobsBackend(service),
    purge: (now) => spool.purgeFinished(now),
    async close() {
      await spool.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

jobStoreContract({
  name: 'file spool',
  declines: {
    leaseLoss:
      'one process: a claim is an in-memory lock held until released; it cannot expire while its holder lives, and dies with the process (the stale-claim test restarts it)',
  },
  open: openSpool,
});
