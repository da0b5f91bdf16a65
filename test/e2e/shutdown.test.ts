/**
 * SIGTERM on the real CLI (`node --import tsx src/main.ts serve`): the gateway
 * stops accepting, lets an in-flight upload finish within SHUTDOWN_GRACE_MS,
 * aborts what is still running after it (503), and exits with nothing left:
 * no temp folder entry, no ffmpeg.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { recordingForm } from '../helpers/gateway.js';
import { childrenOf, processesMentioning, waitFor, writeLongG729 } from '../helpers/hostile.js';
import { RECORDINGS_PATH } from '../../src/imagicle/client.js';

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

let dir: string;
let shortInput: string;
let longInput: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'shutdown-'));
  [shortInput, longInput] = await Promise.all([
    writeLongG729(path.join(dir, 'five-minutes.g729'), 300),
    writeLongG729(path.join(dir, 'two-hours.g729'), 7200),
  ]);
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
});

interface ChildGateway {
  child: ChildProcess;
  url: string;
  tmpDir: string;
  exit: Promise<number | null>;
  logs: string[];
}

async function startChild(name: string, graceMs: number): Promise<ChildGateway> {
  const root = path.join(dir, name);
  const tmpDir = path.join(root, 'tmp');
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve'], {
    env: {
      PATH: process.env.PATH,
      PORT: '0',
      HOST: '127.0.0.1',
      EMULATOR_PORT: '0',
      TMP_DIR: tmpDir,
      EMULATOR_DIR: path.join(root, 'emulator'),
      SPOOL_DIR: path.join(root, 'spool'),
      SHUTDOWN_GRACE_MS: String(graceMs),
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    let buffered = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        logs.push(line);
        try {
          const entry = JSON.parse(line) as { msg?: string; url?: string };
          if (entry.msg === 'gateway listening' && entry.url) resolve(entry.url);
        } catch {
          // not JSON
        }
      }
    });
    child.stderr!.on('data', (c: Buffer) => logs.push(c.toString()));
    void exit.then((code) => reject(new Error(`gateway exited with ${code} before listening:\n${logs.join('\n')}`)));
  });
  return { child, url, tmpDir, exit, logs };
}

const transcodingIn = async (g: ChildGateway): Promise<boolean> =>
  (await childrenOf(g.child.pid!)).some((c) => c.argv.includes('-progress'));

const nothingLeft = async (g: ChildGateway): Promise<void> => {
  expect(await readdir(g.tmpDir)).toEqual([]);
  expect(await processesMentioning(g.tmpDir)).toEqual([]);
};

describe('SIGTERM', () => {
  let graceful: ChildGateway;
  let hard: ChildGateway;
  beforeAll(async () => {
    // Both start at once: starting tsx and checking ffmpeg is most of this file's time.
    [graceful, hard] = await Promise.all([startChild('graceful', 30_000), startChild('hard', 300)]);
  });
  afterAll(() => {
    for (const g of [graceful, hard]) if (g && g.child.exitCode === null) g.child.kill('SIGKILL');
  });

  it('lets an in-flight upload finish within the grace period, refuses new ones, exits 0', async () => {
    const g = graceful;
    const inflight = fetch(`${g.url}${RECORDINGS_PATH}`, { method: 'POST', body: await recordingForm(shortInput) });
    expect(await waitFor(() => transcodingIn(g), 20_000)).toBe(true);

    g.child.kill('SIGTERM');
    expect(await waitFor(() => g.logs.some((l) => l.includes('shutting down')))).toBe(true);
    // The listener is closed: a new upload cannot get in.
    const late = await fetch(`${g.url}/healthz`).then(
      (r) => r.status,
      () => 'refused',
    );
    expect(late).toBe('refused');

    const res = await inflight;
    expect(res.status, await res.clone().text()).toBe(201);
    expect(await g.exit).toBe(0);
    await nothingLeft(g);
  });

  it('after the grace period, aborts the rest cleanly: 503, ffmpeg killed, temp removed', async () => {
    const g = hard;
    const inflight = fetch(`${g.url}${RECORDINGS_PATH}`, { method: 'POST', body: await recordingForm(longInput) });
    expect(await waitFor(() => transcodingIn(g), 20_000)).toBe(true);

    g.child.kill('SIGTERM');
    const res = await inflight;
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBeTruthy();
    expect(await res.json()).toEqual({
      reason: 0,
      message: expect.stringMatching(/shutting down/) as unknown as string,
    });
    expect(await g.exit).toBe(0);
    expect(g.logs.some((l) => l.includes('shutdown grace over'))).toBe(true);
    await nothingLeft(g);
  });
});
