/** The spool on a real file system: durable create, reopen after a "crash", orphans, interrupted attempts, pruning. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Spool } from '../../src/delivery/spool.js';
import { type JobRecord, type SpooledPart } from '../../src/delivery/job.js';
import { writeFileDurable } from '../../src/delivery/durable.js';
import { SAMPLE_METADATA } from '../helpers/gateway.js';
import type { RecordingMetadata } from '../../src/imagicle/schema.js';

const logger = pino({ level: 'silent' });
let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'spool-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const open = () => Spool.open({ dir: path.join(root, 'spool'), deliveredRetentionMs: 1000, logger });

async function upload(name: string, bytes = 1000): Promise<{ path: string; originalName: string; extension: string }> {
  const file = path.join(root, name);
  await writeFile(file, Buffer.alloc(bytes, 7));
  return { path: file, originalName: name, extension: 'wav' };
}

async function newJob(spool: Spool, key?: string): Promise<JobRecord> {
  const job = await spool.create(
    {
      mode: 'drop-in',
      requestId: 'r1',
      async: false,
      expiresAt: new Date(Date.now() + 60_000).toISOString(),
      metadata: SAMPLE_METADATA as RecordingMetadata,
      stereoOptions: undefined,
      callerAuthorization: undefined,
      dedupKey: key,
      audioSha256: undefined,
      contentType: undefined,
      decision: undefined,
    },
    { attachment: await upload(`in-${Math.random()}.wav`) },
  );
  spool.release(job.id);
  return job;
}

function part(index: number, count: number, file: string): SpooledPart {
  return {
    index,
    count,
    file,
    bytes: 10,
    samples: 5,
    sampleRate: 8000,
    durationSeconds: 0.1,
    isoDuration: 'PT0.1S',
    startOffsetSeconds: 0,
    filename: `p${index}.wav`,
    metadata: {},
    state: 'pending',
    attempts: 0,
    upstream: undefined,
    deliveredAt: undefined,
  };
}

describe('spool', () => {
  it('create moves the upload in and journals the job; a reopen finds it as it was', async () => {
    const { spool } = await open();
    const job = await newJob(spool);
    const dir = spool.jobDir(job.id);
    expect((await readdir(dir)).sort()).toEqual(['input-attachment.wav', 'job.json']);
    expect(spool.usedBytes()).toBe(1000);
    const again = await open();
    expect(again.summary).toMatchObject({ jobs: 1, unfinished: 1, interruptedAttempts: 0 });
    expect(again.spool.get(job.id)).toMatchObject({ state: 'received', inputs: { attachment: { bytes: 1000 } } });
    expect((await stat(path.join(dir, 'job.json'))).mode & 0o777).toBe(0o600);
  });

  it('a job folder without journal (crash during intake) is removed at open; leftovers of a run in the background', async () => {
    const { spool } = await open();
    const stray = path.join(spool.jobsDir, '11111111-2222-3333-4444-555555555555');
    await mkdir(stray);
    await writeFile(path.join(stray, 'input-attachment.wav'), 'x');
    const job = await newJob(spool);
    // A delivery interrupted by the crash left a journal being written, and a part already delivered.
    await writeFile(path.join(spool.jobDir(job.id), 'p1.wav'), 'one');
    await writeFile(path.join(spool.jobDir(job.id), 'p2.wav'), 'two');
    job.parts = [part(1, 2, 'p1.wav'), part(2, 2, 'p2.wav')];
    job.parts[0]!.state = 'delivered';
    job.state = 'ready';
    await spool.save(job);
    await writeFile(path.join(spool.jobDir(job.id), '.job.json.tmp-1-abcd'), '{');
    // A transcode interrupted by the crash left a half-written output next to the input of another job.
    const preparing = await newJob(spool);
    await writeFile(path.join(spool.jobDir(preparing.id), 'out.wav'), 'partial');
    const { summary, spool: reopened } = await open();
    expect(summary.orphansRemoved).toBe(1);
    expect((await readdir(reopened.jobsDir)).sort()).toEqual([job.id, preparing.id].sort());
    // The job's leftovers go in the background prune that follows the open.
    await reopened.pruned();
    expect((await readdir(reopened.jobDir(job.id))).sort()).toEqual(['job.json', 'p2.wav']);
    // A job still to prepare is pruned by its run, first thing (run-job.ts): the start-up prune leaves it alone.
    const kept = (await readdir(reopened.jobDir(preparing.id))).sort();
    expect(kept).toEqual(['input-attachment.wav', 'job.json', 'out.wav']);
  });

  it('a part found "delivering" is pending again and marked uncertain (asked about, or counted when resent)', async () => {
    const { spool } = await open();
    const job = await newJob(spool);
    const dir = spool.jobDir(job.id);
    await mkdir(path.join(dir, 'parts'));
    await writeFile(path.join(dir, 'parts', 'p2.wav'), 'two');
    await writeFile(path.join(dir, 'parts', 'p3.wav'), 'three');
    job.parts = [part(1, 3, 'parts/p1.wav'), part(2, 3, 'parts/p2.wav'), part(3, 3, 'parts/p3.wav')];
    job.parts[0]!.state = 'delivered';
    job.parts[1]!.state = 'delivering';
    job.state = 'delivering';
    await spool.save(job);
    await spool.prune(job);
    expect(await readdir(dir)).not.toContain('input-attachment.wav');

    const { summary, spool: reopened } = await open();
    expect(summary).toMatchObject({ interruptedAttempts: 1, unfinished: 1 });
    const back = reopened.get(job.id)!;
    expect(back.state).toBe('ready');
    expect(back.parts.map((p) => p.state)).toEqual(['delivered', 'pending', 'pending']);
    // Counted when it is sent again without Imagicle saying it does not hold it (run-job.ts), not at open.
    expect(back.possibleDuplicates).toBe(0);
    expect(back.parts[1]).toMatchObject({ uncertainInterrupted: true });
    expect(back.parts[1]!.uncertainSince).toBeDefined();
    const onDisk = JSON.parse(await readFile(path.join(dir, 'job.json'), 'utf8')) as JobRecord;
    expect(onDisk.parts[1]!.state).toBe('pending');
    await reopened.pruned();
    expect(reopened.usedBytes()).toBe('two'.length + 'three'.length);
  });

  it('delivered jobs keep only their journal, until the retention ends', async () => {
    const { spool } = await open();
    const job = await newJob(spool, 'k1');
    job.state = 'delivered';
    job.deliveredAt = new Date(Date.now() - 5000).toISOString();
    await spool.save(job);
    await spool.prune(job);
    expect(await readdir(spool.jobDir(job.id))).toEqual(['job.json']);
    expect(spool.usedBytes()).toBe(0);
    expect(spool.findDuplicate('k1', 60_000)?.id).toBe(job.id);
    expect(spool.findDuplicate('k1', 1)).toBeUndefined();
    expect(await spool.purgeFinished()).toBe(1);
    expect(await readdir(spool.jobsDir)).toEqual([]);
    expect(spool.findDuplicate('k1', 60_000)).toBeUndefined();
  });

  it('claims are exclusive; create hands the job over claimed', async () => {
    const { spool } = await open();
    const job = await newJob(spool);
    expect(spool.claim(job.id)).toBe(true);
    expect(spool.claim(job.id)).toBe(false);
    spool.release(job.id);
    expect(spool.claim(job.id)).toBe(true);
  });

  it('durable writes replace the file whole and leave no temp file', async () => {
    const file = path.join(root, 'state.json');
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => writeFileDurable(file, JSON.stringify({ i, pad: 'x'.repeat(5000) }))),
    );
    expect(JSON.parse(await readFile(file, 'utf8'))).toHaveProperty('i');
    expect(await readdir(root)).toEqual(['state.json']);
  });
});
