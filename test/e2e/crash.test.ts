/**
 * kill -9 of a real gateway process: during transcoding, during delivery,
 * and right after a 202. A restart on the same SPOOL_DIR must deliver every
 * accepted recording, leave no orphaned file, and report the possible
 * duplicate (the one a crash between Imagicle's import and the journal makes).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startEmulator, type RunningEmulator } from '../../src/emulator/server.js';
import { RECORDINGS_PATH } from '../../src/imagicle/client.js';
import { fixture } from '../helpers/fixtures.js';
import { recordingForm, SAMPLE_METADATA } from '../helpers/gateway.js';
import type { JobView } from '../../src/delivery/view.js';
import { WAVEFORM_FILE_RE } from '../../src/delivery/blob-store.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Child {
  process: ChildProcess;
  url: string;
  logs: Array<Record<string, unknown>>;
}

let dir: string;
let emulator: RunningEmulator;
let long: string;
/** Every 'spool opened' line of every start: what each restart found. */
const openings: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'crash-'));
  emulator = await startEmulator({ port: 0, storageDir: path.join(dir, 'emulator') });
  // Long enough that converting it takes a moment: the window for the first kill.
  long = path.join(dir, 'long.flac');
  await run('ffmpeg', [
    '-v',
    'error',
    '-f',
    'lavfi',
    '-i',
    'sine=f=300:r=48000:d=300',
    '-c:a',
    'flac',
    '-compression_level',
    '0',
    '-y',
    long,
  ]);
});
afterAll(async () => {
  await emulator?.close();
  // A killed gateway's ffmpeg children get SIGKILL from the kernel (pdeathsig), but may take a moment to go.
  await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
});

const T0 = Date.now();
const mark = (what: string): void => {
  if (process.env.CRASH_TEST_TIMINGS) process.stdout.write(`${Date.now() - T0} ms: ${what}\n`);
};

async function startChild(): Promise<Child> {
  mark('starting a gateway');
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PORT: '0',
      HOST: '127.0.0.1',
      IMAGICLE_URL: emulator.url,
      SPOOL_DIR: path.join(dir, 'spool'),
      TMP_DIR: path.join(dir, 'tmp'),
      DEDUP_WINDOW: '24h',
      RETRY_MIN_DELAY_MS: '50',
      RETRY_MAX_DELAY_MS: '200',
      RETRY_MAX_TOTAL_MS: '1000',
      SPOOL_RETRY_MAX_DELAY_MS: '300',
      // The crash window without reconciliation (possibleDuplicates); with it: test/e2e/reconcile.test.ts.
      RECONCILE: 'off',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`gateway did not start: ${JSON.stringify(logs.slice(-5))}`)),
      20_000,
    );
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === 'spool opened') openings.push(entry);
        if (entry.msg === 'gateway listening') {
          clearTimeout(timer);
          resolve(entry.url as string);
        }
      } catch {
        // not a log line
      }
    });
    child.once('exit', (code) => reject(new Error(`gateway exited with ${code}`)));
  });
  return { process: child, url, logs };
}

function kill9(child: Child): Promise<void> {
  mark('kill -9');
  return new Promise((resolve) => {
    child.process.once('exit', () => resolve());
    child.process.kill('SIGKILL');
  });
}

async function jobs(url: string): Promise<JobView[]> {
  return ((await (await fetch(`${url}/v1/jobs`)).json()) as { jobs: JobView[] }).jobs;
}

async function until<T>(what: () => Promise<T> | T, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await what();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
}

const meta = (pbxCallId: string) => ({ ...SAMPLE_METADATA, pbxCallId });
const upload = async (url: string, file: string, pbxCallId: string, headers: Record<string, string> = {}) =>
  fetch(`${url}${RECORDINGS_PATH}`, { method: 'POST', body: await recordingForm(file, meta(pbxCallId)), headers });

describe('kill -9 and restart on the same spool', () => {
  it('every accepted recording reaches Imagicle; nothing is orphaned; the possible duplicate is reported', async () => {
    // 1. During transcoding (a waiting request: the job is spooled as received before the conversion starts).
    let gw = await startChild();
    const a = upload(gw.url, long, 'crash-A').catch((error: unknown) => error);
    await until(
      () => jobs(gw.url),
      (js) => js.some((j) => j.pbxCallId === 'crash-A' && j.state === 'received'),
    );
    await new Promise((r) => setTimeout(r, 150));
    await kill9(gw);
    expect(await a).toBeInstanceOf(Error);

    // 2. During delivery: Imagicle imports it but answers late; the gateway dies before it learns the id.
    gw = await startChild();
    expect((await jobs(gw.url)).find((j) => j.pbxCallId === 'crash-A')?.state).toBe('received');
    emulator.faults.add({ delayMs: 2000 });
    const requestsBefore = emulator.stats.snapshot().requests;
    const b = upload(gw.url, fixture('pcm16-mono.wav'), 'crash-B').catch((error: unknown) => error);
    await until(
      () => emulator.stats.snapshot().requests,
      (n) => n > requestsBefore,
    );
    // The fault is consumed by whichever upload came first (A's resumed one, or B): wait for B's attempt.
    await until(
      () => jobs(gw.url),
      (js) => js.some((j) => j.pbxCallId === 'crash-B' && j.state === 'delivering'),
    );
    // Killed once Imagicle has imported B (it answers 2 s later): on a loaded machine, killing as soon as the
    // attempt is journaled could cut the body short, and then Imagicle has nothing.
    const imported = (): boolean => emulator.store.list().some((r) => r.metadata.pbxCallId === 'crash-B');
    await until(imported, Boolean, 5000);
    await kill9(gw);
    expect(await b).toBeInstanceOf(Error);
    emulator.faults.clear();

    // 3. Right after a 202 (Prefer: respond-async), once the restart has finished A and B (so that this kill
    //    interrupts no attempt of theirs: each such interruption is one more possible duplicate).
    gw = await startChild();
    await until(
      () => jobs(gw.url),
      (js) => js.filter((j) => j.state === 'delivered').length === 2,
    );
    const c = await upload(gw.url, fixture('mp3-mono.mp3'), 'crash-C', { Prefer: 'respond-async' });
    expect(c.status).toBe(202);
    await kill9(gw);

    // Restart: everything resumes.
    gw = await startChild();
    try {
      expect(openings).toHaveLength(4);
      // The restart after the kill during delivery found B's attempt interrupted: one possible duplicate.
      expect(openings[2]).toMatchObject({ interruptedAttempts: 1, possibleDuplicates: 1 });
      const all = await until(
        () => jobs(gw.url),
        (js) => js.length >= 3 && js.every((j) => j.state === 'delivered'),
        20_000,
      );
      const byCall = new Map(all.map((j) => [j.pbxCallId, j]));
      for (const id of ['crash-A', 'crash-B', 'crash-C']) expect(byCall.get(id)?.state, id).toBe('delivered');

      // B's first import lands when the emulator's delayed answer would have gone out.
      await until(
        () => emulator.store.list().filter((r) => r.metadata.pbxCallId === 'crash-B').length,
        (n) => n >= 2,
        5000,
      );
      const stored = emulator.store.list().map((r) => r.metadata.pbxCallId);
      const count = (id: string): number => stored.filter((s) => s === id).length;
      expect(count('crash-A')).toBe(1);
      expect(count('crash-C')).toBe(1);
      // B: imported during the fault, and again after the restart: the documented duplicate, and it is reported.
      const duplicates = count('crash-B') - 1;
      expect(duplicates).toBe(1);
      const reported = all.reduce((n, j) => n + j.possibleDuplicates, 0);
      expect(reported).toBeGreaterThanOrEqual(duplicates);
      expect(byCall.get('crash-B')!.possibleDuplicates).toBe(1);

      // The source of A never got an answer and sends it again: recognised, not sent twice.
      const again = await upload(gw.url, long, 'crash-A');
      expect(again.status).toBe(201);
      expect(again.headers.get('x-duplicate-of')).toBe(byCall.get('crash-A')!.jobId);
      expect(emulator.store.list().filter((r) => r.metadata.pbxCallId === 'crash-A')).toHaveLength(1);

      // Nothing orphaned: each job folder holds its journal only.
      const spoolJobs = path.join(dir, 'spool', 'jobs');
      const folders = await readdir(spoolJobs);
      expect(folders.sort()).toEqual(all.map((j) => j.jobId).sort());
      // No audio stays: the journal, and the console's waveform pictures (docs/observability.md).
      for (const f of folders) {
        const entries = await readdir(path.join(spoolJobs, f));
        expect(entries.filter((e) => !WAVEFORM_FILE_RE.test(e))).toEqual(['job.json']);
      }
      process.stdout.write(
        `crash test: stored ${JSON.stringify({ A: count('crash-A'), B: count('crash-B'), C: count('crash-C') })}, duplicates ${duplicates}, reported ${reported}, interrupted at each start ${JSON.stringify(openings.map((o) => o.interruptedAttempts))}\n`,
      );
    } finally {
      await kill9(gw);
    }
  }, 60_000);
});
