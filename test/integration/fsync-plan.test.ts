/**
 * The spool's fsync plan (docs/delivery.md, "What is fsynced, and when") on a
 * real file system, with real ffmpeg: an upload moved in without an fsync is
 * checked by its SHA-256 when the spool opens (a torn one is removed, an
 * intact one kept); parts rendered but never fsynced are rendered again by
 * the next run, from the inputs kept for that; parts that outlive a run
 * undelivered are fsynced and recorded so, and the inputs go.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Spool } from '../../src/delivery/spool.js';
import { type JobRecord } from '../../src/delivery/job.js';
import { runJob } from '../../src/delivery/run-job.js';
import { dedupKey, sha256File } from '../../src/delivery/dedup.js';
import { DeliveryService } from '../../src/delivery/service.js';
import { DEFAULT_RETRY_POLICY } from '../../src/delivery/retry.js';
import { aborted } from '../../src/errors.js';
import type { UploadInput, UpstreamResponse } from '../../src/imagicle/client.js';
import { SAMPLE_METADATA } from '../helpers/gateway.js';
import { oneAttemptContext, silentLogger, testPrepare } from '../helpers/run-context.js';
import type { RecordingMetadata } from '../../src/imagicle/schema.js';

const run = promisify(execFile);
const logger = silentLogger;
let root: string;
let opus: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'fsync-plan-'));
  opus = path.join(root, 'call.opus');
  const source = ['-f', 'lavfi', '-i', 'sine=f=300:r=48000:d=3', '-ac', '2'];
  await run('ffmpeg', ['-v', 'error', ...source, '-c:a', 'libopus', '-y', opus]);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const open = () => Spool.open({ dir: path.join(root, 'spool'), deliveredRetentionMs: 60_000, logger });

const prepare = testPrepare;
const ctx = oneAttemptContext;

const answer = (status: number): UpstreamResponse => ({
  status,
  contentType: 'application/json',
  body: '"id-1"',
  json: 'id-1',
  retryAfter: undefined,
  elapsedMs: 1,
});

/** A job whose upload was moved in without an fsync (the caller waits), as DeliveryService.accept() makes it. */
async function unsyncedJob(spool: Spool, init: { dedupKey?: string; owner?: string } = {}): Promise<JobRecord> {
  const upload = path.join(root, `upload-${Math.random()}.opus`);
  await copyFile(opus, upload);
  const sha256 = await sha256File(upload);
  const job = await spool.create(
    {
      mode: 'drop-in',
      requestId: 'r1',
      async: false,
      expiresAt: new Date(Date.now() + 60_000).toISOString(),
      metadata: SAMPLE_METADATA as RecordingMetadata,
      stereoOptions: undefined,
      callerAuthorization: undefined,
      dedupKey: init.dedupKey,
      owner: init.owner,
      audioSha256: sha256,
      contentType: undefined,
      decision: undefined,
    },
    { attachment: { path: upload, originalName: 'call.opus', extension: 'opus', sha256 } },
    new Date(),
    false,
  );
  return job;
}

async function durationOf(file: string): Promise<number> {
  const entries = 'stream=duration_ts,sample_rate,channels';
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', entries, '-of', 'json', file]);
  type Stream = { duration_ts: number; sample_rate: string; channels: number };
  const s = (JSON.parse(stdout) as { streams: Stream[] }).streams[0]!;
  expect(s.channels).toBe(2);
  return s.duration_ts / Number(s.sample_rate);
}

describe('the spool fsync plan', () => {
  it('an upload never fsynced: kept at open when its SHA-256 matches, removed when a crash tore it', async () => {
    const { spool } = await open();
    const intact = await unsyncedJob(spool);
    const torn = await unsyncedJob(spool);
    expect(intact.inputsSynced).toBe(false);
    const journal = JSON.parse(await readFile(path.join(spool.jobDir(intact.id), 'job.json'), 'utf8')) as JobRecord;
    expect(journal.inputs.attachment.sha256).toBe(intact.audioSha256);
    // Power loss: the last blocks of the upload never reached the disk.
    await truncate(path.join(spool.jobDir(torn.id), torn.inputs.attachment.file), 1000);
    const { spool: reopened, summary } = await open();
    expect(summary.tornRemoved).toBe(1);
    expect(reopened.get(torn.id)).toBeUndefined();
    expect(await readdir(reopened.jobsDir)).toEqual([intact.id]);
    // Checked once, then fsynced and recorded so.
    expect(reopened.get(intact.id)?.inputsSynced).toBeUndefined();
  });

  it('a run that leaves the job undelivered fsyncs its parts, records it, and drops the upload', async () => {
    const { spool } = await open();
    const job = await unsyncedJob(spool);
    const run1 = await runJob(spool, () => Promise.resolve(answer(503)), job, ctx);
    expect(run1.outcome.kind).toBe('retry-later');
    const saved = JSON.parse(await readFile(path.join(spool.jobDir(job.id), 'job.json'), 'utf8')) as JobRecord;
    expect(saved.partsSynced).toBeUndefined();
    expect(saved.inputsSynced).toBeUndefined();
    expect((await readdir(spool.jobDir(job.id))).sort()).toEqual(['job.json', saved.parts[0]!.file].sort());
  });

  it('parts rendered but never fsynced are rendered again after a crash, from the upload kept for that', async () => {
    const { spool } = await open();
    const job = await unsyncedJob(spool);
    // The first run renders, then the process dies during the attempt (power loss tears the part).
    const crash = async (upload: UploadInput): Promise<UpstreamResponse> => {
      await truncate(upload.audioPath, 100);
      throw aborted('power loss');
    };
    await expect(runJob(spool, crash, job, ctx)).rejects.toThrow('power loss');
    const before = JSON.parse(await readFile(path.join(spool.jobDir(job.id), 'job.json'), 'utf8')) as JobRecord;
    expect(before.partsSynced).toBe(false);
    expect(await readdir(spool.jobDir(job.id))).toContain(job.inputs.attachment.file);

    const { spool: reopened } = await open();
    const again = reopened.get(job.id)!;
    let sent: number | undefined;
    const deliver = async (upload: UploadInput): Promise<UpstreamResponse> => {
      sent = await durationOf(upload.audioPath);
      return answer(201);
    };
    const run2 = await runJob(reopened, deliver, again, ctx);
    expect(run2.outcome.kind).toBe('delivered');
    // The whole recording went out, not the torn 100 bytes.
    expect(sent).toBeCloseTo(3, 2);
    expect(await readdir(reopened.jobDir(job.id))).toEqual(['job.json']);
  });

  it('a re-render keeps a delivered part delivered', async () => {
    const { spool } = await open();
    const job = await unsyncedJob(spool);
    await runJob(spool, () => Promise.resolve(answer(503)), job, ctx);
    // As if the parts had been rendered by a run that crashed after part 1 was delivered.
    job.parts[0]!.state = 'delivered';
    job.parts[0]!.upstream = { status: 201, contentType: undefined, body: '"id-0"', json: 'id-0' };
    job.partsSynced = false;
    job.state = 'ready';
    let calls = 0;
    await writeFile(path.join(spool.jobDir(job.id), job.inputs.attachment.file), await readFile(opus));
    const run2 = await runJob(spool, () => Promise.resolve(answer(201 + calls++)), job, ctx);
    expect(run2.outcome.kind).toBe('delivered');
    expect(calls).toBe(0);
    expect(job.parts[0]!.upstream?.json).toBe('id-0');
  });

  it('a duplicate upload during the re-render after a crash writes nothing of the job: it is delivered', async () => {
    // The first upload's in-request run rendered its parts, then the gateway died before they were fsynced.
    const { spool } = await open();
    const sha256 = await sha256File(opus);
    const owner = 'key:0123456789ab';
    const key = dedupKey(owner, SAMPLE_METADATA, [sha256]);
    const first = await unsyncedJob(spool, { dedupKey: key, owner });
    const crash = async (): Promise<UpstreamResponse> => Promise.reject(aborted('killed'));
    await expect(runJob(spool, crash, first, ctx)).rejects.toThrow('killed');

    // After the restart the worker re-renders it from the upload kept for that, while the caller sends it again.
    const { spool: reopened } = await open();
    const settings = {
      policy: { ...DEFAULT_RETRY_POLICY, maxAttempts: 1 },
      workerPolicy: DEFAULT_RETRY_POLICY,
      maxAgeMs: 60_000,
      maxBytes: 1e12,
      dedupWindowMs: 3_600_000,
      dedupAnswer: 'replay' as const,
      keepCallerAuthorization: false,
    };
    const service = new DeliveryService(reopened, () => Promise.resolve(answer(201)), settings, logger);
    const job = reopened.get(first.id)!;
    expect(job.partsSynced).toBe(false);
    // The start-up prune claims each job in turn, as the worker would: after it, this test is the worker.
    await reopened.pruned();
    expect(reopened.claim(job.id)).toBe(true);
    const rerender = service.runJob(job, ctx);
    const resend = path.join(root, 'resend.opus');
    await copyFile(opus, resend);
    const duplicate = await service.accept({
      mode: 'drop-in',
      requestId: 'r2',
      log: logger,
      signal: new AbortController().signal,
      preferAsync: true,
      metadata: SAMPLE_METADATA as RecordingMetadata,
      audio: { path: resend, originalName: 'call.opus', extension: 'opus' },
      remoteAudio: undefined,
      stereoOptions: undefined,
      callerAuthorization: undefined,
      prepare,
      owner,
    });
    expect(duplicate.kind).toBe('duplicate');
    const run = await rerender;
    reopened.release(job.id);
    expect(run.outcome.kind).toBe('delivered');
    expect(job.state).toBe('delivered');
  });
});
