/**
 * The CLI as an operator meets it in the first hour: --version everywhere, the help of the file doors,
 * probe's decision, errors in CLI words, import --json, the report CSV's order and safety, Ctrl-C.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'csv-parse/sync';
import { startEmulator, type RunningEmulator } from '../../src/emulator/server.js';
import { fixture } from '../helpers/fixtures.js';

const run = promisify(execFile);
const MAIN = path.resolve('src/main.ts');
const PATTERN = '{start:yyyyMMdd-HHmmss}_{direction:in=1,out=2}_{local}_{remote}_{callId}';
const DEFAULTS = '{"localParty":{"username":"archive"}}';

let work: string;
let emulator: RunningEmulator;
const { version } = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };

const env = (): Record<string, string> => ({
  PATH: process.env.PATH ?? '',
  IMAGICLE_URL: emulator.url,
  TMP_DIR: path.join(work, 'tmp'),
  LOG_LEVEL: 'warn',
});

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', MAIN, ...args], { env: env() });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Ten one-second calls named by the pattern, plus one with a name that does not match. */
async function makeFolder(dir: string, files: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  const base = path.join(work, 'base.wav');
  await run('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'sine=f=440:d=1', '-ar', '8000', '-y', base]);
  const audio = await readFile(base);
  for (let i = 0; i < files; i++)
    await writeFile(path.join(dir, `20240502-1015${String(i).padStart(2, '0')}_in_20${i}_=555${i}_c${i}.wav`), audio);
  await writeFile(path.join(dir, '=cmd|calc.wav'), audio);
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'cli-operator-'));
  emulator = await startEmulator({ port: 0, storageDir: path.join(work, 'emulator') });
});

afterAll(async () => {
  await emulator.close();
  await rm(work, { recursive: true, force: true });
});

describe('the CLI for an operator', () => {
  it('answers --version on every command', async () => {
    for (const args of [['--version'], ['import', '--version'], ['watch', '--version'], ['probe', '--version']]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout.trim()).toBe(version);
    }
  });

  it('import --help and watch --help say where recordings go, what metadata is needed, with an example', async () => {
    for (const command of ['import', 'watch']) {
      const { stdout } = await cli([command, '--help']);
      expect(stdout).toMatch(/IMAGICLE_URL/);
      for (const field of ['localParty.username', 'localParty.phoneNumber', 'startDateTime', 'direction'])
        expect(stdout).toContain(field);
      expect(stdout).toMatch(/\{direction:in=1,out=2\}/);
      expect(stdout).toMatch(/Example:\n/);
    }
  });

  it('probe prints the decision and its reasons; --json the probe and the decision', async () => {
    const text = await cli(['probe', fixture('raw.g722')]);
    expect(text.stdout).toMatch(/^decision: transcode to pcm16 \(pcm_s16le in WAV\), 8000 Hz, mono$/m);
    expect(text.stdout).toMatch(/^parts: +1 /m);
    expect(text.stdout).toMatch(/headerless raw G\.722 needs a header/);
    const json = JSON.parse((await cli(['probe', '--json', fixture('raw.g722')])).stdout) as {
      probe: { audio: { codecName: string } };
      decision: { plan: { action: string }; parts: number };
    };
    expect(json.probe.audio.codecName).toBe('adpcm_g722');
    expect(json.decision).toMatchObject({ plan: { action: 'transcode' }, parts: 1 });
  });

  it('speaks of files, not of HTTP, when a local file is wrong', async () => {
    const notAudio = path.join(work, 'notes.wav');
    await writeFile(notAudio, 'not audio at all');
    for (const args of [
      ['probe', notAudio],
      ['probe', path.join(work, 'missing.wav')],
      ['transcode', notAudio, path.join(work, 'out.wav')],
    ]) {
      const r = await cli(args);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^error: \S+: /);
      expect(r.stderr).not.toMatch(/HTTP|reason \d/);
    }
  });

  it('import --json prints one object per file and a summary; the report is in input order and safe', async () => {
    const dir = path.join(work, 'calls');
    await makeFolder(dir, 10);
    const report = path.join(work, 'report.csv');
    const args = ['import', dir, '--pattern', PATTERN, '--defaults', DEFAULTS, '--state', path.join(work, 's1')];
    const r = await cli([...args, '--report', report, '--json', '--concurrency', '2']);
    expect(r.code).toBe(1); // the name that does not match
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => l.type === 'file')).toHaveLength(11);
    expect(lines.at(-1)).toMatchObject({ type: 'summary', delivered: 10, invalid: 1, failed: 0, audioSeconds: 10 });

    const rows = parse(await readFile(report, 'utf8'), { columns: true }) as Record<string, string>[];
    const names = rows.map((row) => row.path);
    // Input order (the folder's sorted walk), not completion order; a name starting with = is neutralised.
    const calls = names.filter((n) => !n!.startsWith("'"));
    expect(calls).toEqual(Array.from({ length: 10 }, (_, i) => expect.stringContaining(`_c${i}.wav`)));
    expect(names).toContain("'=cmd|calc.wav");
    const first = rows.find((row) => row.pbxCallId === 'c0')!;
    expect(first).toMatchObject({
      status: 'delivered',
      startDateTime: '2024-05-02T10:15:00.000Z',
      direction: '1',
      localUsername: 'archive',
      localPhoneNumber: '200',
      remotePhoneNumber: "'=5550",
    });
    for (const row of rows) for (const cell of Object.values(row)) expect(cell).not.toMatch(/^[=+\-@]/);

    // A dry run says how much audio it would deliver.
    const dry = await cli([...args.slice(0, -1), path.join(work, 's2'), '--dry-run']);
    expect(dry.stdout).toMatch(/would send: +10 \(10\.0 s of audio, about 10 recordings in Imagicle\)/);
  }, 60_000);

  it('Ctrl-C prints a clean summary, how to resume, and exits 130', async () => {
    const dir = path.join(work, 'slow');
    await makeFolder(dir, 12);
    emulator.faults.add({ delayMs: 400, count: 100 });
    const before = emulator.stats.snapshot().requests;
    try {
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          MAIN,
          'import',
          dir,
          '--pattern',
          PATTERN,
          '--defaults',
          DEFAULTS,
          '--concurrency',
          '1',
          '--state',
          path.join(work, 's3'),
        ],
        { env: { ...env(), TMP_DIR: path.join(work, 'tmp2') }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      const deadline = Date.now() + 30_000;
      while (emulator.stats.snapshot().requests < before + 3 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      child.kill('SIGINT');
      expect(await exited).toBe(130);
      expect(stdout).toMatch(/^Import interrupted after \d+\.\d s: \d+ of 13 files; run the same command to resume$/m);
      expect(stderr).toMatch(/interrupted/);
    } finally {
      emulator.faults.clear();
    }
  }, 60_000);
});
