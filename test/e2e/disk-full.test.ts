/**
 * A full disk is the server's problem, not the client's: on a 40 MB tmpfs
 * (mounted by the test, so only as root), ENOSPC while storing the upload and
 * a conversion that does not fit answer 507 with Retry-After in Imagicle's
 * shape and log an error; a job already accepted (202) stays in the spool and
 * is delivered once space comes back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, statfs, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { pcmLeg } from '../helpers/expanding.js';
import { recordingForm, startTestGateway, type TestGateway } from '../helpers/gateway.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;
let root: string;
let disk: string;
let mounted = false;
let mountProblem: string | undefined;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'gw-full-'));
  disk = path.join(root, 'disk');
  await mkdir(disk);
  if (!isRoot) return;
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=40m', 'tmpfs', disk]);
    mounted = true;
  } catch (error) {
    mountProblem = error instanceof Error ? error.message : String(error);
  }
});
afterAll(async () => {
  if (mounted) await run('umount', ['-l', disk]).catch(() => undefined);
  await rm(root, { recursive: true, force: true });
});

function skipped(): boolean {
  if (mounted) return false;
  const why = mountProblem ?? 'not running as root';
  console.warn(`skipped: the disk-full tests mount a 40 MB tmpfs, which needs root (${why})`);
  return true;
}

const freeBytes = async (dir: string): Promise<number> => {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
};

/** Fills the tmpfs until `leave` bytes are free; resolves to the filler's path. */
async function fillLeaving(leave: number): Promise<string> {
  const filler = path.join(disk, `filler-${Math.random().toString(16).slice(2)}`);
  await writeFile(filler, Buffer.alloc(Math.max(0, (await freeBytes(disk)) - leave)));
  return filler;
}

describe('on a 40 MB tmpfs', () => {
  let t: TestGateway;
  let files: string;
  beforeAll(async () => {
    if (!mounted) return;
    files = path.join(root, 'files');
    await mkdir(files);
    // Under 1 MiB: the gateway drains what it does not store, so the client can read the early answer.
    await writeFile(path.join(files, 'big.wav'), pcmLeg(900_000));
    // A-law, 1 byte a sample: converted to 16-bit PCM it doubles, and up to its decode cap it may take 24 MB.
    const alaw = Buffer.from(Array.from({ length: 3_000_000 }, (_, i) => (0xd5 ^ (i % 7)) & 0xff));
    await writeFile(path.join(files, 'call.al'), alaw);
    t = await startTestGateway({
      TMP_DIR: path.join(disk, 'tmp'),
      SPOOL_DIR: path.join(disk, 'spool'),
      MIN_FREE_DISK_BYTES: '0',
      RETRY_MIN_DELAY_MS: '50',
      RETRY_MAX_DELAY_MS: '200',
      SPOOL_RETRY_MAX_DELAY_MS: '200',
      LOG_LEVEL: 'info',
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('ENOSPC while the upload is stored: 507 + Retry-After, logged as an error, nothing left', async () => {
    if (skipped()) return;
    const filler = await fillLeaving(300_000);
    try {
      const body = await recordingForm(path.join(files, 'big.wav'));
      const res = await fetch(`${t.url}/v1/recordings`, { method: 'POST', body });
      expect(res.status).toBe(507);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await res.json()).toEqual({ reason: 0, message: 'The gateway is out of disk space; retry later' });
      expect(t.logs.some((l) => l.includes('"level":50') && l.includes('ENOSPC'))).toBe(true);
      expect(await t.settledTempEntries()).toEqual([]);
    } finally {
      await rm(filler, { force: true });
    }
  });

  it('a conversion that does not fit now: 507 + Retry-After before decoding, nothing spooled', async () => {
    if (skipped()) return;
    const filler = await fillLeaving(8_000_000);
    try {
      const form = await recordingForm(path.join(files, 'call.al'));
      const res = await fetch(`${t.url}/v1/recordings`, { method: 'POST', body: form });
      expect(res.status).toBe(507);
      expect(res.headers.get('retry-after')).toBe('60');
      const body = (await res.json()) as { reason: number; message: string };
      expect(body.reason).toBe(0);
      expect(body.message).toMatch(/not enough disk space for this recording now /);
      expect(body.message).toMatch(/\(the converted audio needs \d+ MB, [\d.]+ MB free in the spool\); retry later$/);
      const jobs = (await (await fetch(`${t.url}/v1/jobs`)).json()) as { count: number };
      expect(jobs.count).toBe(0);
    } finally {
      await rm(filler, { force: true });
    }
  });

  it('an accepted job (202) is kept while the disk is full and delivered when space returns', async () => {
    if (skipped()) return;
    const filler = await fillLeaving(8_000_000);
    let removed = false;
    try {
      const before = t.emulator.store.list().length;
      const res = await fetch(`${t.url}/v1/recordings`, {
        method: 'POST',
        headers: { prefer: 'respond-async' },
        body: await recordingForm(path.join(files, 'call.al')),
      });
      expect(res.status).toBe(202);
      const { jobId } = (await res.json()) as { jobId: string };
      // The worker tries, finds no room, keeps the job and tries again.
      let job: { state: string; lastError?: { code?: string; status?: number } } | undefined;
      for (let i = 0; i < 100; i++) {
        job = (await (await fetch(`${t.url}/v1/jobs/${jobId}`)).json()) as typeof job;
        if (job?.lastError) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(job?.state).toBe('received');
      expect(job?.lastError).toMatchObject({ code: 'INSUFFICIENT_STORAGE', status: 507 });
      await rm(filler, { force: true });
      removed = true;
      for (let i = 0; i < 200 && job?.state !== 'delivered'; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        job = (await (await fetch(`${t.url}/v1/jobs/${jobId}`)).json()) as typeof job;
      }
      expect(job?.state).toBe('delivered');
      expect(t.emulator.store.list().length).toBe(before + 1);
    } finally {
      if (!removed) await rm(filler, { force: true });
    }
  });
});
