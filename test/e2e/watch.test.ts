/**
 * `watch` end to end: the real CLI against the emulator on port 0. A file
 * written slowly, in chunks over several seconds, is taken only once
 * complete; delivered files move to done/<date>/, a bad one to failed/ with
 * its .error.json; a restart delivers nothing twice; with --sidecar required
 * nothing is taken before its sidecar exists.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { access, mkdir, mkdtemp, open, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startEmulator, type RunningEmulator } from '../../src/emulator/server.js';

const run = promisify(execFile);
const MAIN = path.resolve('src/main.ts');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let work: string;
let emulator: RunningEmulator;

function startWatch(dir: string, extra: string[]): { child: ChildProcess; exited: Promise<void> } {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      MAIN,
      'watch',
      dir,
      '--state',
      path.join(work, `state-${path.basename(dir)}`),
      '--poll-seconds',
      '1',
      ...extra,
    ],
    {
      env: {
        PATH: process.env.PATH ?? '',
        IMAGICLE_URL: emulator.url,
        TMP_DIR: path.join(work, 'tmp'),
        LOG_LEVEL: 'warn',
      },
      stdio: 'ignore',
    },
  );
  return { child, exited: new Promise((resolve) => child.once('exit', () => resolve())) };
}

async function until(check: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(100);
  }
}

const exists = (p: string): Promise<boolean> =>
  access(p).then(
    () => true,
    () => false,
  );
const today = (): string => new Date().toISOString().slice(0, 10);
const PATTERN = '{start:yyyyMMdd-HHmmss}_{direction:in=1,out=2}_{local}_{remote}_{callId}';

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'watch-e2e-'));
  emulator = await startEmulator({ port: 0, storageDir: path.join(work, 'emulator') });
  // 4 s of 8 kHz 16-bit PCM: 64 000 bytes of samples behind a 44-byte header.
  await run('ffmpeg', [
    '-v',
    'error',
    '-f',
    'lavfi',
    '-i',
    'sine=f=440:d=4',
    '-ar',
    '8000',
    '-c:a',
    'pcm_s16le',
    '-y',
    path.join(work, 'long.wav'),
  ]);
  await run('ffmpeg', [
    '-v',
    'error',
    '-f',
    'lavfi',
    '-i',
    'sine=f=640:d=0.3',
    '-ar',
    '8000',
    '-c:a',
    'pcm_s16le',
    '-y',
    path.join(work, 'short.wav'),
  ]);
});

afterAll(async () => {
  await emulator?.close();
  await rm(work, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
});

describe('watch <dir>', () => {
  it('takes a file written slowly only when complete, moves it, and survives a restart', async () => {
    const dir = path.join(work, 'drop');
    await mkdir(dir, { recursive: true });
    let watch = startWatch(dir, [
      '--pattern',
      PATTERN,
      '--defaults',
      '{"localParty":{"username":"pbx"}}',
      '--stable-seconds',
      '2',
    ]);
    try {
      // Written in 8 chunks, 0.6 s apart (4.2 s in all): each pause is shorter than --stable-seconds.
      const audio = await readFile(path.join(work, 'long.wav'));
      const name = '20250110-080000_in_300_555_w1.wav';
      const handle = await open(path.join(dir, name), 'w');
      const chunk = Math.ceil(audio.length / 8);
      for (let i = 0; i < 8; i++) {
        await handle.write(audio.subarray(i * chunk, (i + 1) * chunk));
        await handle.sync();
        await sleep(600);
        expect(emulator.store.list()).toHaveLength(0);
      }
      await handle.close();
      await writeFile(path.join(dir, 'junk.wav'), 'not audio at all');
      await until(() => emulator.store.list().length === 1, 20_000);
      const [rec] = emulator.store.list();
      expect(rec!.format.durationSeconds).toBeCloseTo(4, 3);
      expect(rec!.metadata).toMatchObject({
        pbxCallId: 'w1',
        direction: 1,
        localParty: { username: 'pbx', phoneNumber: '300' },
        startDateTime: '2025-01-10T08:00:00.000Z',
      });
      await until(() => exists(path.join(dir, 'done', today(), name)), 10_000);
      expect(await exists(path.join(dir, name))).toBe(false);
      await until(() => exists(path.join(dir, 'failed', 'junk.error.json')), 15_000);
      const error = JSON.parse(await readFile(path.join(dir, 'failed', 'junk.error.json'), 'utf8')) as {
        error: string;
      };
      expect(error.error).toMatch(/pattern|metadata/);
      expect(await exists(path.join(dir, 'failed', 'junk.wav'))).toBe(true);

      // Restart: the same recording dropped again under its name is recognised, not sent twice.
      watch.child.kill('SIGKILL');
      await watch.exited;
      await writeFile(path.join(dir, name), audio);
      watch = startWatch(dir, [
        '--pattern',
        PATTERN,
        '--defaults',
        '{"localParty":{"username":"pbx"}}',
        '--stable-seconds',
        '1',
      ]);
      await until(async () => !(await exists(path.join(dir, name))), 15_000);
      expect(emulator.store.list()).toHaveLength(1);
      expect((await readdir(path.join(dir, 'done', today()))).sort()).toEqual(
        [name, name.replace('.wav', '-1.wav')].sort(),
      );
    } finally {
      watch.child.kill('SIGTERM');
      await watch.exited;
    }
  }, 90_000);

  it('with --sidecar required, takes nothing before the sidecar exists', async () => {
    await emulator.store.clear();
    const dir = path.join(work, 'sidecar');
    await mkdir(dir, { recursive: true });
    const watch = startWatch(dir, ['--sidecar', 'required']);
    try {
      await writeFile(path.join(dir, 'rec-1.wav'), await readFile(path.join(work, 'short.wav')));
      await sleep(2500);
      expect(emulator.store.list()).toHaveLength(0);
      const jsondata = {
        startDateTime: '2025-02-02T10:00:00Z',
        direction: 2,
        localParty: { username: 'u', phoneNumber: '1' },
        pbxCallId: 's1',
      };
      await writeFile(path.join(dir, 'rec-1.json'), JSON.stringify(jsondata));
      await until(() => emulator.store.list().length === 1, 15_000);
      expect(emulator.store.list()[0]!.metadata).toMatchObject(jsondata);
      await until(() => exists(path.join(dir, 'done', today(), 'rec-1.json')), 10_000);
    } finally {
      watch.child.kill('SIGTERM');
      await watch.exited;
    }
  }, 60_000);
});
