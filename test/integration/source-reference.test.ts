/**
 * A watched folder's recording referenced in place (source-reference.ts): its job holds no copy of it, reads it
 * where it is, never writes to it (a header repair works on a copy), and converts nothing but the recording that
 * was taken: rewritten, removed or replaced by a link, the job fails with GONE before anything is sent.
 * Real files, real ffmpeg, the real spool.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { appendFile, copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Spool } from '../../src/delivery/spool.js';
import { runJob } from '../../src/delivery/run-job.js';
import { sha256File } from '../../src/delivery/dedup.js';
import type { JobRecord } from '../../src/delivery/job.js';
import type { UploadInput, UpstreamResponse } from '../../src/imagicle/client.js';
import type { RecordingMetadata } from '../../src/imagicle/schema.js';
import { GatewayError } from '../../src/errors.js';
import { openRegularFile, sha256Opened } from '../../src/safe-fs.js';
import { openSource, referenceTo } from '../../src/source-reference.js';
import { fixture } from '../helpers/fixtures.js';
import { SAMPLE_METADATA } from '../helpers/gateway.js';
import { oneAttemptContext, silentLogger } from '../helpers/run-context.js';

const run = promisify(execFile);
const logger = silentLogger;
let root: string;
let folder: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'source-ref-'));
  folder = path.join(root, 'drop');
  await mkdir(folder);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const ctx = oneAttemptContext;

/** Imagicle accepting every part; what it was sent is probed before the run deletes it. */
function accepting(): {
  sent: Array<{ codec: string; channels: number; duration: number }>;
  deliver: (u: UploadInput) => Promise<UpstreamResponse>;
} {
  const sent: Array<{ codec: string; channels: number; duration: number }> = [];
  return {
    sent,
    deliver: async (upload) => {
      const { stdout } = await run('ffprobe', [
        '-v',
        'error',
        '-show_entries',
        'stream=codec_name,channels,duration_ts,sample_rate',
        '-of',
        'json',
        upload.audioPath,
      ]);
      type Stream = { codec_name: string; channels: number; duration_ts: number; sample_rate: string };
      const s = (JSON.parse(stdout) as { streams: Stream[] }).streams[0]!;
      sent.push({ codec: s.codec_name, channels: s.channels, duration: s.duration_ts / Number(s.sample_rate) });
      return {
        status: 201,
        contentType: 'application/json',
        body: '"id-1"',
        json: 'id-1',
        retryAfter: undefined,
        elapsedMs: 1,
      };
    },
  };
}

const openSpool = () => Spool.open({ dir: path.join(root, 'spool'), deliveredRetentionMs: 60_000, logger });

/** What the watched folder's door does: open the file safely, fsync, hash, and make a job that references it. */
async function referencedJob(spool: Spool, file: string): Promise<JobRecord> {
  const opened = await openRegularFile(file, folder);
  try {
    const sha256 = await sha256Opened(opened);
    const extension = path.extname(file).slice(1);
    return await spool.create(
      {
        mode: 'drop-in',
        door: 'watch',
        requestId: 'w1',
        async: true,
        expiresAt: new Date(Date.now() + 60_000).toISOString(),
        metadata: SAMPLE_METADATA as RecordingMetadata,
        stereoOptions: undefined,
        callerAuthorization: undefined,
        dedupKey: undefined,
        audioSha256: sha256,
        contentType: undefined,
        decision: undefined,
      },
      {
        attachment: {
          path: opened.path,
          originalName: path.basename(file),
          extension,
          sha256,
          source: referenceTo(opened, folder, sha256),
        },
      },
    );
  } finally {
    await opened.close();
  }
}

async function expectGone(promise: Promise<unknown>, words: RegExp): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GatewayError);
  expect((error as GatewayError).code).toBe('GONE');
  expect((error as GatewayError).message).toMatch(words);
}

describe('a recording referenced in place', () => {
  it('is converted where it is: no copy in the spool, no spool bytes, the recorder’s file untouched', async () => {
    const file = path.join(folder, 'call.opus');
    await copyFile(fixture('opus-stereo.opus'), file);
    const before = await sha256File(file);
    const { spool } = await openSpool();
    const job = await referencedJob(spool, file);
    spool.release(job.id);
    expect(job.inputs.attachment.source).toMatchObject({ path: file, root: folder, sha256: before });
    expect(await readdir(spool.jobDir(job.id))).toEqual(['job.json']);
    expect(spool.usedBytes()).toBe(0);

    // After a restart the reference is there, and nothing was taken for a torn upload.
    const { spool: reopened, summary } = await openSpool();
    expect(summary.tornRemoved).toBe(0);
    const again = reopened.get(job.id)!;
    expect(again.inputs.attachment.source?.path).toBe(file);
    const imagicle = accepting();
    const result = await runJob(reopened, imagicle.deliver, again, ctx);
    expect(result.outcome.kind).toBe('delivered');
    expect(imagicle.sent).toHaveLength(1);
    expect(imagicle.sent[0]).toMatchObject({ codec: 'pcm_s16le', channels: 2 });
    expect(await sha256File(file)).toBe(before);
  });

  it('a WAV whose header needs repairing: the repair is made on a copy in the job’s folder, never on the file', async () => {
    const file = path.join(folder, 'sizes-zero.wav');
    await copyFile(fixture('pcm16-size-zero.wav'), file);
    const before = await sha256File(file);
    const { spool } = await openSpool();
    const job = await referencedJob(spool, file);
    const imagicle = accepting();
    const result = await runJob(spool, imagicle.deliver, job, ctx);
    expect(result.outcome.kind).toBe('delivered');
    expect(result.prepared?.plan.action).toBe('repair-header');
    expect(imagicle.sent[0]).toMatchObject({ codec: 'pcm_s16le', channels: 1 });
    expect(imagicle.sent[0]!.duration).toBeGreaterThan(0);
    expect(await sha256File(file)).toBe(before);
  });

  it('a compliant file passed through is copied into the job’s folder, so the part is the job’s own', async () => {
    const file = path.join(folder, 'plain.wav');
    await copyFile(fixture('pcm16-mono.wav'), file);
    const { spool } = await openSpool();
    const job = await referencedJob(spool, file);
    const result = await runJob(
      spool,
      () =>
        Promise.resolve({
          status: 503,
          contentType: undefined,
          body: '',
          json: undefined,
          retryAfter: undefined,
          elapsedMs: 1,
        }),
      job,
      ctx,
    );
    expect(result.outcome.kind).toBe('retry-later');
    expect(result.prepared?.plan.action).toBe('pass-through');
    expect(job.parts).toHaveLength(1);
    expect(job.parts[0]!.file).not.toMatch(/^\.\.|^\//);
    expect(await readdir(spool.jobDir(job.id))).toContain(job.parts[0]!.file);
  });

  it('rewritten after it was taken: GONE, nothing sent', async () => {
    const file = path.join(folder, 'call.opus');
    await copyFile(fixture('opus-stereo.opus'), file);
    const { spool } = await openSpool();
    const job = await referencedJob(spool, file);
    // Another recording under the same name, the same length: only the content says it is not the one taken.
    const other = await readFile(file);
    other[other.length - 10] = other[other.length - 10]! ^ 0xff;
    await writeFile(file, other);
    const imagicle = accepting();
    await expectGone(runJob(spool, imagicle.deliver, job, ctx), /changed \(its content is not the same\)/);
    expect(imagicle.sent).toHaveLength(0);
  });

  it('removed, or replaced by a link to another file: GONE, the link not followed', async () => {
    const file = path.join(folder, 'call.opus');
    await copyFile(fixture('opus-stereo.opus'), file);
    const { spool } = await openSpool();
    const removed = await referencedJob(spool, file);
    await rm(file);
    await expectGone(runJob(spool, accepting().deliver, removed, ctx), /was removed from its folder/);

    await copyFile(fixture('opus-stereo.opus'), file);
    const linked = await referencedJob(spool, file);
    const elsewhere = path.join(root, 'elsewhere.opus');
    await copyFile(file, elsewhere);
    await rm(file);
    await symlink(elsewhere, file);
    await expectGone(runJob(spool, accepting().deliver, linked, ctx), /not a plain file/);
  });

  it('written to while it is read: the check at the end of the conversion says so', async () => {
    const file = path.join(folder, 'call.opus');
    await copyFile(fixture('opus-stereo.opus'), file);
    const opened = await openRegularFile(file, folder);
    const reference = referenceTo(opened, folder, await sha256Opened(opened));
    await opened.close();
    const source = await openSource(reference);
    try {
      await source.checkUnchanged();
      await appendFile(file, Buffer.alloc(10));
      await expectGone(source.checkUnchanged(), /written to while it was being converted/);
    } finally {
      await source.close();
    }
  });
});
