/**
 * WATCH_DIR under `serve` (with the spool): every file taken becomes a job of
 * the gateway's store, listed by the jobs API with its door, retried through
 * an outage like an upload, and moved to done/ or failed/ only when its job
 * ends. Imagicle's refusal keeps the job (failed, visible) and moves the file
 * to failed/ with its .error.json.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fixture } from '../helpers/fixtures.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { createLogger } from '../../src/logger.js';

const ADMIN = 'operator-key-abcdef0123';
const admin = { 'x-api-key': ADMIN };
const PATTERN = '{start:yyyyMMdd-HHmmss}_{direction:in=1,out=2}_{local}_{remote}_{callId}';

interface JobRow {
  jobId: string;
  state: string;
  door: string;
  pbxCallId: string;
  lastError?: { status?: number };
}
interface JobList {
  jobs: JobRow[];
  counts: Record<string, number>;
}

let t: TestGateway;
let dir: string;
let root: string;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
async function until<T>(check: () => Promise<T | undefined>, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(200);
  }
}
const list = async (query = ''): Promise<JobList> =>
  (await (await fetch(`${t.url}/v1/jobs?${query}`, { headers: admin })).json()) as JobList;
const walk = async (folder: string): Promise<string[]> =>
  (await readdir(folder, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => path.relative(folder, path.join(e.parentPath, e.name)));

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'watch-jobs-'));
  dir = path.join(root, 'drop');
  await mkdir(dir, { recursive: true });
  t = await startTestGateway({
    GATEWAY_ADMIN_KEYS: ADMIN,
    WATCH_DIR: dir,
    WATCH_PATTERN: PATTERN,
    WATCH_DEFAULTS: '{"localParty":{"username":"pbx"}}',
    WATCH_STABLE_SECONDS: '1',
    WATCH_POLL_SECONDS: '1',
    WATCH_STATE_DIR: path.join(root, 'state'),
    RETRY_MIN_DELAY_MS: '200',
    RETRY_MAX_DELAY_MS: '400',
    RETRY_MAX_TOTAL_MS: '500',
    SPOOL_RETRY_MAX_DELAY_MS: '500',
  });
  const { startServeWatcher } = await import('../../src/import/serve-watch.js');
  const watcher = startServeWatcher(t.config, t.gateway, createLogger('warn'));
  closers.push(() => watcher.close());
});

const closers: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const close of closers) await close();
  await t?.close();
  await rm(root, { recursive: true, force: true });
});

describe('WATCH_DIR under serve', () => {
  it('a file becomes a job of the store (door watch), waits through an outage, then moves to done/', async () => {
    t.emulator.faults.add({ status: 503, count: 3 });
    const taken = '20250110-080000_in_300_555_wj1.wav';
    await copyFile(fixture('pcm16-mono.wav'), path.join(dir, taken));
    const job = await until(async () => (await list('door=watch')).jobs.find((j) => j.pbxCallId === 'wj1'), 20_000);
    expect(job.door).toBe('watch');
    // Referenced where it is, not copied: the job's folder in the spool holds no input.
    const spool = t.gateway.delivery!.spool;
    expect(spool.get(job.jobId)?.inputs.attachment.source?.path).toBe(path.join(dir, taken));
    expect((await readdir(spool.jobDir(job.jobId))).filter((f) => f.startsWith('input-'))).toEqual([]);
    // While its job is open the file stays where the recorder put it.
    await until(async () => ((await list('q=wj1')).jobs[0]?.state === 'delivered' ? true : undefined), 30_000);
    await until(async () => ((await walk(dir)).some((f) => f.startsWith('done/')) ? true : undefined), 10_000);
    expect((await walk(dir)).filter((f) => !f.startsWith('done/'))).toEqual([]);
    expect(t.emulator.store.list().filter((r) => r.metadata.pbxCallId === 'wj1')).toHaveLength(1);
  }, 60_000);

  it('Imagicle refuses it (400): the job stays listed as failed, the file goes to failed/ with its reason', async () => {
    t.emulator.faults.add({ status: 400, body: { reason: 1, message: 'no such user' } });
    await copyFile(fixture('pcm16-mono.wav'), path.join(dir, '20250110-090000_out_300_556_wj2.wav'));
    const failed = await until(
      async () => (await list('door=watch&state=failed')).jobs.find((j) => j.pbxCallId === 'wj2'),
      30_000,
    );
    expect(failed.lastError?.status).toBe(400);
    const errorFile = await until(async () => (await walk(dir)).find((f) => f.endsWith('.error.json')), 10_000);
    expect(errorFile.startsWith('failed/')).toBe(true);
    expect(await readFile(path.join(dir, errorFile), 'utf8')).toContain('400');
    expect((await list('door=watch')).counts.failed).toBeGreaterThanOrEqual(1);
    // The operator's view of the folder (/metrics/status `watch`, the console's overview): both files ended.
    const watch = async (): Promise<Record<string, unknown> | undefined> =>
      (
        (await (await fetch(`${t.url}/metrics/status`, { headers: admin })).json()) as {
          watch?: Record<string, unknown>;
        }
      ).watch;
    // Not for the world: /readyz says nothing of the folder or the disks.
    expect(await (await fetch(`${t.url}/readyz`)).json()).not.toHaveProperty('watch');
    await until(async () => ((await watch())?.failed === 1 ? true : undefined), 5_000);
    expect(await watch()).toMatchObject({ waiting: 0, inProgress: 0, retrying: 0, taken: 2, delivered: 1, failed: 1 });
  }, 60_000);
});
