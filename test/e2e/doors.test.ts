/**
 * The file doors against a hostile recorder (docs/security.md, "File doors"): the recorder can write into the
 * watched folder and nothing else. Links planted under done/ and failed/, a sidecar linked to a file outside, a
 * name that flips between a decoy and a link, a FIFO, nested and huge sidecars; and manifest rows that name files
 * outside their folder or /dev/zero. Real CLI processes against the emulator on port 0.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import {
  access,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  symlink,
  truncate,
  unlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startEmulator, type RunningEmulator } from '../../src/emulator/server.js';
import { canWatchChildMemory, watchChildMemory } from '../helpers/child-memory.js';

const run = promisify(execFile);
const MAIN = path.resolve('src/main.ts');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const today = (): string => new Date().toISOString().slice(0, 10);
const exists = (p: string): Promise<boolean> =>
  access(p).then(
    () => true,
    () => false,
  );

let work: string;
let emulator: RunningEmulator;

const SIDE = {
  startDateTime: '2025-03-03T10:00:00Z',
  direction: 1,
  localParty: { username: 'rec', phoneNumber: '100' },
};

interface Proc {
  child: ChildProcess;
  exited: Promise<number | null>;
  lines: string[];
}

function startCli(args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    env: {
      PATH: process.env.PATH ?? '',
      IMAGICLE_URL: emulator.url,
      TMP_DIR: path.join(work, 'tmp'),
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => lines.push(l));
  createInterface({ input: child.stderr! }).on('line', (l) => lines.push(l));
  return { child, lines, exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
}

function startWatch(dir: string, extra: string[] = []): Proc {
  return startCli([
    'watch',
    dir,
    '--state',
    path.join(work, `state-${path.basename(dir)}`),
    '--poll-seconds',
    '1',
    '--stable-seconds',
    '1',
    ...extra,
  ]);
}

async function stop(p: Proc): Promise<void> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await p.exited;
}

async function until(check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
  return true;
}

async function wav(name: string, seconds: number, rate: number, freq = 440): Promise<string> {
  const file = path.join(work, name);
  await run('ffmpeg', [
    '-v',
    'error',
    '-f',
    'lavfi',
    '-i',
    `sine=f=${freq}:d=${seconds}`,
    '-ar',
    String(rate),
    '-c:a',
    'pcm_s16le',
    '-y',
    file,
  ]);
  return file;
}

let decoy: string;
let secret: string;
let outside: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'doors-e2e-'));
  emulator = await startEmulator({ port: 0, storageDir: path.join(work, 'emulator') });
  outside = path.join(work, 'outside');
  await mkdir(outside);
  // The same size (32 044 bytes) and, below, the same mtime: only the rate tells them apart once delivered.
  decoy = await wav('decoy.wav', 2, 8000, 440);
  secret = await wav('secret.wav', 1, 16000, 1000);
  const when = new Date('2025-01-01T00:00:00Z');
  await utimes(decoy, when, when);
  await utimes(secret, when, when);
});

afterAll(async () => {
  await emulator?.close();
  await rm(work, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
});

describe('watched folder: a recorder that writes into it and nowhere else', () => {
  it('#1 links planted under done/ and failed/ never make the gateway write outside the folder', async () => {
    await emulator.store.clear();
    const dir = path.join(work, 'w1');
    const away = path.join(outside, 'w1');
    await mkdir(path.join(away, 'sub'), { recursive: true });
    await mkdir(path.join(dir, 'failed'), { recursive: true });
    await mkdir(path.join(dir, 'done'), { recursive: true });
    await mkdir(path.join(dir, 'sub'), { recursive: true });
    await symlink(path.join(away, 'created-by-gateway.json'), path.join(dir, 'failed', 'junk.error.json'));
    await symlink(path.join(away, 'sub'), path.join(dir, 'failed', 'sub'));
    await symlink(away, path.join(dir, 'done', today()));
    await writeFile(path.join(dir, 'junk.wav'), 'not audio');
    await writeFile(path.join(dir, 'sub', 'junk2.wav'), 'not audio either');
    await copyFile(decoy, path.join(dir, 'good.wav'));
    await writeFile(path.join(dir, 'good.json'), JSON.stringify({ ...SIDE, pbxCallId: 'w1-good' }));
    const watch = startWatch(dir);
    try {
      expect(await until(() => emulator.store.list().length === 1, 60_000)).toBe(true);
      // junk.wav goes to failed/ beside the planted link, its error file under a free name.
      const moved = await until(() => exists(path.join(dir, 'failed', 'junk-1.error.json')), 60_000);
      await sleep(3000);
      const written = [...(await readdir(away)), ...(await readdir(path.join(away, 'sub'))).map((n) => `sub/${n}`)];
      console.log(`#1: written outside the folder: [${written.join(', ')}]`);
      expect(moved).toBe(true);
      expect(await readdir(away)).toEqual(['sub']);
      expect(await readdir(path.join(away, 'sub'))).toEqual([]);
      // Refused moves leave the files where they were.
      expect(await exists(path.join(dir, 'good.wav'))).toBe(true);
      expect(await exists(path.join(dir, 'sub', 'junk2.wav'))).toBe(true);
      expect(watch.lines.join('\n')).toMatch(/symbolic link/);
    } finally {
      await stop(watch);
    }
  }, 240_000);

  it('#2 a sidecar linked to a JSON file outside is refused, never read nor sent', async () => {
    await emulator.store.clear();
    const dir = path.join(work, 'w2');
    await mkdir(dir, { recursive: true });
    const stolen = path.join(outside, 'stolen.json');
    await writeFile(stolen, JSON.stringify({ ...SIDE, pbxCallId: 'stolen-metadata' }));
    await copyFile(decoy, path.join(dir, 'call.wav'));
    await symlink(stolen, path.join(dir, 'call.json'));
    const watch = startWatch(dir);
    try {
      const refused = await until(() => exists(path.join(dir, 'failed', 'call.error.json')), 60_000);
      const sent = emulator.store.list().map((r) => r.metadata.pbxCallId);
      console.log(`#2: ${refused ? 'refused' : 'not refused in 60 s'}; delivered with pbxCallId: [${sent.join(', ')}]`);
      expect(refused).toBe(true);
      const error = JSON.parse(await readFile(path.join(dir, 'failed', 'call.error.json'), 'utf8')) as {
        error: string;
      };
      expect(error.error).toMatch(/symbolic link/);
      expect(emulator.store.list().filter((r) => r.metadata.pbxCallId === 'stolen-metadata')).toHaveLength(0);
    } finally {
      await stop(watch);
    }
  }, 240_000);

  it('#3 names flipping between decoys and a link to an outside WAV: only decoys are ever delivered', async () => {
    await emulator.store.clear();
    const dir = path.join(work, 'w3');
    await mkdir(dir, { recursive: true });
    // Eight names at once, each its own decoy (distinct audio, so none is a duplicate of another): eight first
    // deliveries, each a chance for the swap to land between the check and the use.
    const when = new Date('2025-01-01T00:00:00Z');
    const decoys: string[] = [];
    for (let i = 0; i < 8; i++) {
      const file = await wav(`decoy-${i}.wav`, 2, 8000, 300 + 100 * i);
      await utimes(file, when, when);
      decoys.push(file);
    }
    const watch = startWatch(dir, ['--defaults', JSON.stringify(SIDE)]);
    let flips = 0;
    try {
      expect(await until(() => watch.lines.some((l) => l.includes('watching folder')), 60_000)).toBe(true);
      const end = Date.now() + 10_000;
      while (Date.now() < end) {
        for (let i = 0; i < decoys.length; i++) {
          const staged = path.join(dir, `.decoy-${i}.tmp`);
          await copyFile(decoys[i]!, staged);
          await utimes(staged, when, when);
          await rename(staged, path.join(dir, `race-${i}.wav`));
        }
        await sleep(3);
        for (let i = 0; i < decoys.length; i++) {
          const link = path.join(dir, `.link-${i}.tmp`);
          await symlink(secret, link);
          await rename(link, path.join(dir, `race-${i}.wav`));
        }
        await sleep(3);
        flips++;
      }
      for (let i = 0; i < decoys.length; i++) await unlink(path.join(dir, `race-${i}.wav`)).catch(() => undefined);
      await sleep(2000);
    } finally {
      await stop(watch);
    }
    const rates = emulator.store.list().map((r) => r.format.sampleRate);
    // Each name taken was delivered (a decoy) or refused as a link (moved to failed/): the race was run.
    const refused = (await readdir(path.join(dir, 'failed')).catch(() => [])).filter((n) => n.endsWith('.error.json'));
    console.log(
      `#3: ${flips} flips of 8 names in 10 s; sample rates delivered: [${rates.join(', ')}]; refused: ${refused.length}`,
    );
    expect(flips).toBeGreaterThan(50);
    expect(rates.length + refused.length).toBeGreaterThan(0);
    // The outside file is 16 kHz; every decoy is 8 kHz.
    expect(rates.filter((r) => r !== 8000)).toEqual([]);
  }, 240_000);

  it('#4 a FIFO sidecar blocks nothing: a later file is delivered, and SIGTERM exits within the backstop', async () => {
    await emulator.store.clear();
    const dir = path.join(work, 'w4');
    await mkdir(dir, { recursive: true });
    await copyFile(decoy, path.join(dir, 'fifo.wav'));
    execFileSync('mkfifo', [path.join(dir, 'fifo.json')]);
    const serve = startCli(['serve'], {
      PORT: '0',
      HOST: '127.0.0.1',
      WATCH_DIR: dir,
      WATCH_STATE_DIR: path.join(work, 'state-w4'),
      WATCH_POLL_SECONDS: '1',
      WATCH_STABLE_SECONDS: '1',
      SPOOL_DIR: path.join(work, 'spool-w4'),
      SHUTDOWN_GRACE_MS: '1000',
      ALLOW_ANONYMOUS: 'true',
    });
    try {
      expect(await until(() => serve.lines.some((l) => l.includes('gateway listening')), 60_000)).toBe(true);
      await sleep(3000);
      await copyFile(decoy, path.join(dir, 'later.wav'));
      await writeFile(path.join(dir, 'later.json'), JSON.stringify({ ...SIDE, pbxCallId: 'after-fifo' }));
      const later = await until(() => emulator.store.list().some((r) => r.metadata.pbxCallId === 'after-fifo'), 60_000);
      console.log(`#4: the file dropped after the FIFO ${later ? 'was delivered' : 'was not delivered in 20 s'}`);
      expect(later).toBe(true);
      expect(await until(() => exists(path.join(dir, 'failed', 'fifo.error.json')), 60_000)).toBe(true);
      serve.child.kill('SIGTERM');
      const signalled = Date.now();
      // The backstop: SHUTDOWN_GRACE_MS + 15 s.
      const exited = await Promise.race([serve.exited.then(() => true), sleep(16_000 + 4000).then(() => false)]);
      console.log(
        `#4: ${exited ? `exited ${Date.now() - signalled} ms after SIGTERM` : 'still running 20 s after SIGTERM'}`,
      );
      expect(exited).toBe(true);
    } finally {
      await stop(serve);
    }
  }, 240_000);

  it('#5 sidecars nested too deep (500 000 levels; 33 levels) are permanent failures, not outages', async () => {
    const dir = path.join(work, 'w5');
    await mkdir(dir, { recursive: true });
    const metadata =
      '"startDateTime":"2025-01-01T00:00:00Z","direction":1,"localParty":{"username":"u","phoneNumber":"1"}';
    for (const [name, levels] of [
      ['deep', 500_000],
      ['deep33', 33],
    ] as const) {
      await copyFile(decoy, path.join(dir, `${name}.wav`));
      await writeFile(
        path.join(dir, `${name}.json`),
        `{${metadata},"extra":${'['.repeat(levels - 1)}${']'.repeat(levels - 1)}}`,
      );
    }
    const watch = startWatch(dir);
    try {
      for (const [name, reason] of [
        ['deep', /more than 65536 bytes/],
        ['deep33', /nests deeper than 32/],
      ] as const) {
        const failed = await until(() => exists(path.join(dir, 'failed', `${name}.error.json`)), 60_000);
        if (!failed) console.log(`#5: ${name}.json: not in failed/ after 60 s; log: ${watch.lines.at(-1) ?? ''}`);
        expect(failed).toBe(true);
        const error = JSON.parse(await readFile(path.join(dir, 'failed', `${name}.error.json`), 'utf8')) as {
          error: string;
        };
        console.log(`#5: ${name}.json: ${error.error}`);
        expect(error.error).toMatch(reason);
      }
    } finally {
      await stop(watch);
    }
  }, 240_000);

  it.skipIf(!canWatchChildMemory)(
    '#6 a 1.9 GB sparse sidecar is refused without being read into memory',
    async () => {
      const dir = path.join(work, 'w6');
      await mkdir(dir, { recursive: true });
      await copyFile(decoy, path.join(dir, 'huge.wav'));
      await writeFile(path.join(dir, 'huge.json'), '');
      await truncate(path.join(dir, 'huge.json'), 1.9e9);
      const memory = watchChildMemory(20);
      const watch = startWatch(dir);
      try {
        expect(await until(() => exists(path.join(dir, 'failed', 'huge.error.json')), 60_000)).toBe(true);
        const error = JSON.parse(await readFile(path.join(dir, 'failed', 'huge.error.json'), 'utf8')) as {
          error: string;
        };
        expect(error.error).toMatch(/more than 65536/);
      } finally {
        await stop(watch);
      }
      const { peakBytes } = await memory.stop();
      console.log(`#6: peak RSS of the watcher ${Math.round(peakBytes / 1e6)} MB`);
      expect(peakBytes).toBeLessThan(300 * 1024 * 1024);
    },
    240_000,
  );
});

describe('import manifest: rows may name only files under its folder (or --root)', () => {
  it('#8 ../outside and /dev/zero are refused; --allow-outside opens the outside file; SIGTERM stops a long hash', async () => {
    await emulator.store.clear();
    const dir = path.join(work, 'm8');
    await mkdir(dir, { recursive: true });
    const away = path.join(outside, 'm8.wav');
    await copyFile(decoy, away);
    const manifest = path.join(dir, 'calls.csv');
    await writeFile(
      manifest,
      [
        'file,startDateTime,direction,localUsername,localPhoneNumber,pbxCallId',
        `../outside/m8.wav,2025-01-01T00:00:00Z,1,u,1,m8-outside`,
        `/dev/zero,2025-01-01T00:00:00Z,1,u,1,m8-zero`,
      ].join('\n'),
    );
    const first = startCli(['import', manifest, '--state', path.join(work, 'state-m8')]);
    const done = await Promise.race([first.exited.then(() => true), sleep(60_000).then(() => false)]);
    console.log(
      `#8: first run ${done ? 'exited' : 'still running after 60 s'}; delivered: [${emulator.store
        .list()
        .map((r) => r.metadata.pbxCallId)
        .join(', ')}]`,
    );
    if (!done) first.child.kill('SIGTERM');
    await Promise.race([first.exited, sleep(5000)]);
    await stop(first);
    expect(done).toBe(true);
    expect(emulator.store.list()).toHaveLength(0);
    expect(first.lines.join('\n')).toMatch(/m8\.wav is outside/);

    const allowed = startCli(['import', manifest, '--allow-outside', '--state', path.join(work, 'state-m8b')]);
    const allowedDone = await Promise.race([allowed.exited.then(() => true), sleep(60_000).then(() => false)]);
    await stop(allowed);
    expect(allowedDone).toBe(true);
    expect(emulator.store.list().map((r) => r.metadata.pbxCallId)).toEqual(['m8-outside']);
    expect(allowed.lines.join('\n')).toMatch(/\/dev\/zero is a device, not a regular file/);

    // A huge (sparse) regular file: the hash is stopped by SIGTERM, the run exits.
    const big = path.join(dir, 'big.wav');
    await writeFile(big, '');
    await truncate(big, 200e9);
    const bigManifest = path.join(dir, 'big.csv');
    await writeFile(
      bigManifest,
      'file,startDateTime,direction,localUsername,localPhoneNumber\nbig.wav,2025-01-01T00:00:00Z,1,u,1\n',
    );
    const hashing = startCli(['import', bigManifest, '--state', path.join(work, 'state-m8c')]);
    // Once the run has started (its SIGTERM handler is in place), and has been hashing for a while.
    expect(await until(() => hashing.lines.some((l) => l.startsWith('Importing 1 file')), 60_000)).toBe(true);
    await sleep(3000);
    hashing.child.kill('SIGTERM');
    const signalled = Date.now();
    const stopped = await Promise.race([hashing.exited.then(() => true), sleep(20_000).then(() => false)]);
    console.log(
      `#8: ${stopped ? `exited ${Date.now() - signalled} ms after SIGTERM` : 'still hashing 20 s after SIGTERM'}`,
    );
    await stop(hashing);
    expect(stopped).toBe(true);
  }, 240_000);
});
