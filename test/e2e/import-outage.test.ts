/**
 * `import` when Imagicle is away or slow, end to end: the real CLI (a child
 * process) against the emulator on port 0, a few tiny files.
 *
 * - 503 with Retry-After for a while, then accepted: the running import
 *   waits and finishes every file, none failed.
 * - Imagicle down (connection refused), Ctrl-C, then a run past
 *   --max-wait: nothing failed, a plain rerun (no --retry-failed) delivers
 *   everything.
 * - kill -9 mid-run while the emulator answers slowly, then a rerun: every
 *   recording is in Imagicle exactly once (the part cut short is asked about
 *   before it is sent again: RECONCILE=auto).
 * - `import --gateway` and `watch --gateway`: each file a job of a running
 *   gateway (doors import, watch), listed by its jobs API; a rerun sends
 *   nothing again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startEmulator, type RunningEmulator } from '../../src/emulator/server.js';
import { startTestGateway } from '../helpers/gateway.js';

const run = promisify(execFile);
const MAIN = path.resolve('src/main.ts');
const PATTERN = '{start:yyyyMMdd-HHmmss}_{direction:in=1,out=2}_{local}_{remote}_{callId}';
const DEFAULTS = JSON.stringify({ localParty: { username: 'archive' } });
const FILES = 6;

let work: string;
let emulator: RunningEmulator;
let source: string;

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

const env = (url: string, extra: Record<string, string> = {}): Record<string, string> => ({
  PATH: process.env.PATH ?? '',
  IMAGICLE_URL: url,
  TMP_DIR: path.join(work, 'tmp'),
  LOG_LEVEL: 'warn',
  RETRY_MIN_DELAY_MS: '50',
  RETRY_MAX_DELAY_MS: '200',
  SPOOL_RETRY_MAX_DELAY_MS: '300',
  // A part whose outcome a stop left unknown is asked about this long after its attempt began.
  IMAGICLE_TIMEOUT_MS: '2000',
  ...extra,
});

const args = (state: string, extra: string[] = []): string[] => [
  'import',
  source,
  '--pattern',
  PATTERN,
  '--defaults',
  DEFAULTS,
  '--state',
  path.join(work, state),
  '--concurrency',
  '1',
  '--json',
  ...extra,
];

async function cli(argv: string[], environment: Record<string, string>): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', MAIN, ...argv], { env: environment });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The last line of `--json`: the summary object. */
const summaryOf = (stdout: string): Record<string, unknown> =>
  JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;

const byCallId = (): Map<string, number> => {
  const counts = new Map<string, number>();
  for (const r of emulator.store.list()) {
    const id = String(r.metadata.pbxCallId);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
};

const expectEachOnce = (): void => {
  const counts = byCallId();
  expect(counts.size).toBe(FILES);
  for (const [id, n] of counts) expect(n, id).toBe(1);
};

/** A port nothing listens on: Imagicle is down. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'import-outage-'));
  emulator = await startEmulator({ port: 0, storageDir: path.join(work, 'emulator') });
  source = path.join(work, 'calls');
  await mkdir(source, { recursive: true });
  const base = path.join(work, 'base.wav');
  await run('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'sine=f=300:d=0.3', '-ar', '8000', '-y', base]);
  for (let i = 0; i < FILES; i++) {
    await copyFile(
      base,
      path.join(source, `20240301-10${String(i).padStart(2, '0')}05_in_${100 + i}_555${i}_call${i}.wav`),
    );
  }
}, 60_000);

afterAll(async () => {
  await emulator?.close();
  await rm(work, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
});

describe('import while Imagicle is away', () => {
  it('503 with Retry-After for a while, then accepted: the running import finishes every file, none failed', async () => {
    await emulator.store.clear();
    emulator.faults.clear();
    emulator.faults.add({ status: 503, retryAfter: 1, count: 5 });
    // One attempt per run of a file: every 503 goes to the job life's backoff (the waiting this is about).
    const result = await cli(args('state-503'), env(emulator.url, { RETRY_MAX_ATTEMPTS: '1' }));
    expect(result.code, result.stderr).toBe(0);
    const summary = summaryOf(result.stdout);
    expect(summary).toMatchObject({ delivered: FILES, failed: 0, waiting: 0 });
    expect(result.stderr).toMatch(/waiting for Imagicle: .*Imagicle answered 503/);
    expect(emulator.stats.snapshot().faulted).toBe(5);
    expectEachOnce();
  }, 60_000);

  it('down (connection refused): Ctrl-C, then past --max-wait (exit 75): nothing failed; a plain rerun delivers all', async () => {
    await emulator.store.clear();
    emulator.faults.clear();
    const down = `http://127.0.0.1:${await closedPort()}`;
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args('state-down')], {
      env: env(down, { RETRY_MAX_ATTEMPTS: '1' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const deadline = Date.now() + 30_000;
    // Both files in flight have been tried and are waiting.
    while ((stderr.match(/waiting for Imagicle: /g) ?? []).length < 2 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    expect(stderr).toMatch(/waiting for Imagicle: .*ECONNREFUSED|connect/i);
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    const first = summaryOf(stdout);
    expect(first).toMatchObject({ interrupted: true, failed: 0, delivered: 0 });
    expect(first.waiting).toBeGreaterThanOrEqual(2);

    // Still down, and no time to wait (--max-wait 0): exit 75, every file pending, none failed.
    const still = await cli(args('state-down', ['--max-wait', '0']), env(down, { RETRY_MAX_ATTEMPTS: '1' }));
    expect(still.code, still.stderr).toBe(75);
    expect(summaryOf(still.stdout)).toMatchObject({ waiting: FILES, failed: 0 });
    expect(still.stdout + still.stderr).toMatch(/ECONNREFUSED|connect/i);

    // No --retry-failed: the files were pending, never failed.
    const rerun = await cli(args('state-down'), env(emulator.url));
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(summaryOf(rerun.stdout)).toMatchObject({ delivered: FILES, failed: 0, alreadyDelivered: 0 });
    expectEachOnce();
  }, 90_000);

  it('kill -9 while Imagicle answers slowly, then a rerun: every recording in Imagicle exactly once', async () => {
    await emulator.store.clear();
    emulator.faults.clear();
    // Each upload is stored, then answered 600 ms later: a kill lands between "stored" and "answered".
    emulator.faults.add({ delayMs: 600, count: 100 });
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args('state-kill')], {
      env: env(emulator.url),
      stdio: 'ignore',
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const deadline = Date.now() + 30_000;
    while (emulator.store.list().length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGKILL');
    await exited;
    emulator.faults.clear();
    const before = emulator.store.list().length;
    expect(before).toBeGreaterThanOrEqual(3);
    expect(before).toBeLessThan(FILES);

    // The attempt cut short is asked about after IMAGICLE_TIMEOUT_MS from its start (reconciliation's window).
    const rerun = await cli(args('state-kill'), env(emulator.url, { IMAGICLE_TIMEOUT_MS: '1000' }));
    expect(rerun.code, rerun.stderr).toBe(0);
    const summary = summaryOf(rerun.stdout);
    expect(summary).toMatchObject({ failed: 0, possibleDuplicates: 0 });
    expect(Number(summary.delivered) + Number(summary.alreadyDelivered)).toBe(FILES);
    expectEachOnce();
  }, 60_000);
});

describe('--gateway: each file a job of a running gateway', () => {
  it('import and watch jobs (doors import, watch) are listed by the jobs API; a rerun sends nothing again', async () => {
    const key = 'import-door-key-0123456789abcdef';
    const gw = await startTestGateway({ GATEWAY_API_KEYS: key, DEDUP_WINDOW: '1h' });
    try {
      const auth = { Authorization: `Bearer ${key}` };
      // No IMAGICLE_URL: with --gateway nothing here talks to Imagicle (no embedded emulator either).
      const local = { ...env(emulator.url), IMAGICLE_URL: '' };
      const argv = [...args('state-gateway'), '--gateway', gw.url, '--key', key];
      const result = await cli(argv, local);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).not.toMatch(/EMBEDDED IMAGICLE EMULATOR/);
      expect(summaryOf(result.stdout)).toMatchObject({ delivered: FILES, failed: 0 });
      const files = result.stdout
        .trim()
        .split('\n')
        .slice(0, -1)
        .map((line) => JSON.parse(line) as { imagicleIds: string[] });
      for (const f of files) expect(f.imagicleIds).toHaveLength(1);

      const list = (await (await fetch(`${gw.url}/v1/jobs?door=import`, { headers: auth })).json()) as {
        jobs: Array<{ door: string; state: string }>;
      };
      expect(list.jobs).toHaveLength(FILES);
      for (const job of list.jobs) expect(job).toMatchObject({ door: 'import', state: 'delivered' });
      const http = (await (await fetch(`${gw.url}/v1/jobs?door=http`, { headers: auth })).json()) as {
        jobs: unknown[];
      };
      expect(http.jobs).toHaveLength(0);
      const counts = new Map<string, number>();
      for (const r of gw.emulator.store.list())
        counts.set(String(r.metadata.pbxCallId), (counts.get(String(r.metadata.pbxCallId)) ?? 0) + 1);
      expect([...counts.values()]).toEqual(Array<number>(FILES).fill(1));

      const rerun = await cli(argv, local);
      expect(summaryOf(rerun.stdout)).toMatchObject({ alreadyDelivered: FILES, delivered: 0 });
      expect(gw.emulator.store.list()).toHaveLength(FILES);

      // watch --gateway: a file dropped into the folder becomes a job (door watch), moved to done/ when it ends.
      const dropDir = path.join(work, 'drop');
      await mkdir(dropDir, { recursive: true });
      const name = '20240302-101505_out_200_5559_dropped.wav';
      await copyFile(path.join(work, 'base.wav'), path.join(dropDir, name));
      const watchArgs = ['watch', dropDir, '--pattern', PATTERN, '--defaults', DEFAULTS, '--stable-seconds', '1'];
      const watch = spawn(
        process.execPath,
        ['--import', 'tsx', MAIN, ...watchArgs, '--poll-seconds', '1', '--gateway', gw.url, '--key', key],
        { env: { ...local, WATCH_STATE_DIR: path.join(work, 'watch-state') }, stdio: 'ignore' },
      );
      const watchExited = new Promise<void>((resolve) => watch.once('exit', () => resolve()));
      try {
        const done = path.join(dropDir, 'done', new Date().toISOString().slice(0, 10), name);
        const deadline = Date.now() + 60_000;
        while (!(await stat(done).catch(() => undefined)) && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 100));
        expect(await stat(done).catch(() => undefined)).toBeDefined();
      } finally {
        watch.kill('SIGTERM');
        await watchExited;
      }
      const watched = (await (await fetch(`${gw.url}/v1/jobs?door=watch`, { headers: auth })).json()) as {
        jobs: Array<{ state: string; pbxCallId: string }>;
      };
      expect(watched.jobs).toHaveLength(1);
      expect(watched.jobs[0]).toMatchObject({ state: 'delivered', pbxCallId: 'dropped' });

      // A wrong key is a usage error before any file is sent (not every file failed).
      const wrong = await cli([...args('state-gateway-wrong'), '--gateway', gw.url, '--key', 'x'.repeat(32)], local);
      expect(wrong.code).toBe(2);
      expect(wrong.stderr).toMatch(/refused the key \(401\)/);

      // A label other than the file doors' is refused before any job exists.
      const form = new FormData();
      form.append('jsondata', JSON.stringify({}));
      const refused = await fetch(`${gw.url}/v1/recordings`, {
        method: 'POST',
        headers: { ...auth, 'X-Gateway-Door': 'console' },
        body: form,
      });
      expect(refused.status).toBe(400);
    } finally {
      await gw.close();
    }
  }, 90_000);
});
