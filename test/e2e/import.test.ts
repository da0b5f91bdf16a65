/**
 * `import` end to end: the real CLI (a child process) against the emulator
 * on port 0. A folder of ~200 tiny recordings in mixed formats and nested
 * folders, named by a pattern, plus invalid names; a manifest with two-leg
 * rows; a sidecar; a 409; a dry run; kill -9 in the middle, then a rerun.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'csv-parse/sync';
import { startEmulator, type RunningEmulator } from '../../src/emulator/server.js';
import { parseIsoDuration } from '../../src/imagicle/duration.js';
import { sha256File } from '../../src/delivery/dedup.js';
import { fixture } from '../helpers/fixtures.js';

const run = promisify(execFile);
const MAIN = path.resolve('src/main.ts');
const PATTERN = '{start:yyyy}/{start:MM}/{start:yyyyMMdd-HHmmss}_{direction:in=1,out=2}_{local}_{remote}_{callId}';

let work: string;
let emulator: RunningEmulator;

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

const env = (): Record<string, string> => ({
  PATH: process.env.PATH ?? '',
  IMAGICLE_URL: emulator.url,
  TMP_DIR: path.join(work, 'tmp'),
  LOG_LEVEL: 'warn',
  RETRY_MIN_DELAY_MS: '50',
  RETRY_MAX_DELAY_MS: '200',
  // A rerun asks Imagicle about a part a kill cut short once this long has passed since its attempt began.
  IMAGICLE_TIMEOUT_MS: '3000',
});

async function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', MAIN, ...args], {
      env: { ...env(), ...extraEnv },
      maxBuffer: 16 << 20,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Base recordings (0.2–0.5 s) in several formats; each named file is a copy of one of them. */
const BASES = [
  { ext: 'wav', args: ['-f', 'lavfi', '-i', 'sine=f=300:d=0.5', '-ar', '8000', '-c:a', 'pcm_s16le'], seconds: 0.5 },
  { ext: 'wav', args: ['-f', 'lavfi', '-i', 'sine=f=400:d=0.4', '-ar', '8000', '-c:a', 'pcm_alaw'], seconds: 0.4 },
  {
    ext: 'mp3',
    args: ['-f', 'lavfi', '-i', 'sine=f=500:d=0.5', '-ar', '8000', '-c:a', 'libmp3lame', '-b:a', '16k'],
    seconds: undefined,
  },
  { ext: 'opus', args: ['-f', 'lavfi', '-i', 'sine=f=600:d=0.3', '-ar', '16000', '-c:a', 'libopus'], seconds: 0.3 },
  { ext: 'ul', args: ['-f', 'lavfi', '-i', 'sine=f=700:d=0.2', '-ar', '8000', '-f', 'mulaw'], seconds: 0.2 },
  { ext: 'flac', args: ['-f', 'lavfi', '-i', 'sine=f=800:d=0.3', '-ar', '16000', '-c:a', 'flac'], seconds: 0.3 },
];

interface Expected {
  rel: string;
  callId: string;
  start: string;
  direction: number;
  local: string;
  remote: string;
}

const FILES = 200;
const expected: Expected[] = [];
const invalid = [
  '2024/01/not-a-call.wav',
  '2024/02/20240230-101010_in_1_2_bad-date.wav',
  '2024/03/20240301-101010_sideways_1_2_x.wav',
];

async function makeFolder(dir: string): Promise<void> {
  const bases: string[] = [];
  await mkdir(path.join(work, 'bases'), { recursive: true });
  for (const [i, b] of BASES.entries()) {
    const file = path.join(work, 'bases', `base${i}.${b.ext}`);
    await run('ffmpeg', ['-v', 'error', ...b.args, '-y', file]);
    bases.push(file);
  }
  for (let i = 0; i < FILES; i++) {
    const month = String((i % 12) + 1).padStart(2, '0');
    const day = String((i % 20) + 1).padStart(2, '0'); // clear of the DST changes
    const time = `${String(i % 24).padStart(2, '0')}${String(i % 60).padStart(2, '0')}05`;
    const dir2 = i % 2 === 0 ? 'in' : 'out';
    const callId = `call${i}`;
    const base = bases[i % bases.length]!;
    const rel = `2024/${month}/2024${month}${day}-${time}_${dir2}_${100 + i}_${5550000 + i}_${callId}${path.extname(base)}`;
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await copyFile(base, path.join(dir, rel));
    expected.push({
      rel,
      callId,
      // --timezone Europe/Rome: no offset in the name, so +01:00 in winter and +02:00 in summer.
      start: new Date(
        `2024-${month}-${day}T${time.slice(0, 2)}:${time.slice(2, 4)}:${time.slice(4)}${Number(month) >= 4 && Number(month) <= 10 ? '+02:00' : '+01:00'}`,
      ).toISOString(),
      direction: i % 2 === 0 ? 1 : 2,
      local: String(100 + i),
      remote: String(5550000 + i),
    });
  }
  for (const rel of invalid) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await copyFile(bases[0]!, path.join(dir, rel));
  }
}

interface ReportRow {
  path: string;
  status: string;
  imagicleIds: string;
  parts: string;
  duration: string;
  decision: string;
  error: string;
}

const parseReport = (csv: string): ReportRow[] => parse(csv, { columns: true }) as ReportRow[];

const byCallId = (): Map<string, number> => {
  const counts = new Map<string, number>();
  for (const r of emulator.store.list())
    counts.set(String(r.metadata.pbxCallId), (counts.get(String(r.metadata.pbxCallId)) ?? 0) + 1);
  return counts;
};

const DEFAULTS = JSON.stringify({ localParty: { username: 'archive' }, notes: 'from the archive' });

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'import-e2e-'));
  emulator = await startEmulator({ port: 0, storageDir: path.join(work, 'emulator') });
  await makeFolder(path.join(work, 'calls'));
}, 120_000);

afterAll(async () => {
  await emulator?.close();
  await rm(work, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
});

describe('import of a folder named by a pattern', () => {
  const args = (state: string, report: string): string[] => [
    'import',
    path.join(work, 'calls'),
    '--pattern',
    PATTERN,
    '--defaults',
    DEFAULTS,
    '--timezone',
    'Europe/Rome',
    '--state',
    path.join(work, state),
    '--report',
    path.join(work, report),
    '--concurrency',
    '2',
  ];

  it('a dry run probes every file, reports every problem, and sends nothing', async () => {
    const result = await cli([...args('dry-state', 'dry.csv'), '--dry-run']);
    expect(result.code).toBe(1);
    expect(emulator.stats.snapshot().requests).toBe(0);
    const rows = parseReport(await readFile(path.join(work, 'dry.csv'), 'utf8'));
    expect(rows).toHaveLength(FILES + invalid.length);
    expect(rows.filter((r) => r.status === 'would-send')).toHaveLength(FILES);
    expect(
      rows
        .filter((r) => r.status === 'invalid')
        .map((r) => r.path)
        .sort(),
    ).toEqual([...invalid].sort());
    expect(rows.find((r) => r.path.endsWith('.opus'))!.decision).toBe('transcode');
  }, 120_000);

  it('kill -9 in the middle, then a rerun: every file delivered exactly once, with its metadata', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args('state', 'first.csv')], {
      env: env(),
      stdio: 'ignore',
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const deadline = Date.now() + 60_000;
    while (emulator.store.list().length < 60 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGKILL');
    await exited;
    const before = emulator.store.list().length;
    expect(before).toBeGreaterThanOrEqual(60);
    expect(before).toBeLessThan(FILES);

    const rerun = await cli(args('state', 'report.csv'));
    expect(rerun.code).toBe(1); // the invalid names
    const possible = Number(/possible duplicates[^:]*: (\d+)/.exec(rerun.stdout)?.[1]);
    // The parts a kill cut short were looked up in Imagicle (RECONCILE=auto) before any re-send.
    expect(possible).toBe(0);

    const counts = byCallId();
    for (const [callId, n] of counts) expect(n, callId).toBe(1);
    for (const e of expected) expect(counts.get(e.callId), e.rel).toBeGreaterThanOrEqual(1);
    expect(counts.size).toBe(FILES);

    const byId = new Map(emulator.store.list().map((r) => [String(r.metadata.pbxCallId), r]));
    for (const [i, e] of expected.entries()) {
      const r = byId.get(e.callId)!;
      expect(r.metadata.startDateTime, e.rel).toBe(e.start);
      expect(r.metadata.direction).toBe(e.direction);
      expect(r.metadata.localParty).toEqual({ username: 'archive', phoneNumber: e.local });
      expect(r.metadata.remoteParty).toEqual({ phoneNumber: e.remote });
      expect(r.metadata.notes).toBe('from the archive');
      const seconds = BASES[i % BASES.length]!.seconds;
      if (seconds !== undefined) expect(r.format.durationSeconds).toBeCloseTo(seconds, 2);
      expect(parseIsoDuration(r.metadata.duration)).toBeCloseTo(r.format.durationSeconds, 2);
    }

    // The report of the rerun lists every file, the ones of the first run as already delivered.
    const rows = parseReport(await readFile(path.join(work, 'report.csv'), 'utf8'));
    expect(rows).toHaveLength(FILES + invalid.length);
    const statuses = new Set(rows.map((r) => r.status));
    expect([...statuses].sort()).toEqual(['already-delivered', 'delivered', 'invalid']);
    for (const r of rows.filter((row) => row.status !== 'invalid')) {
      expect(r.imagicleIds).not.toBe('');
      expect(r.parts).toBe('1');
      expect(r.duration).toMatch(/^PT/);
    }
    expect(rows.find((r) => r.path.includes('bad-date'))!.error).toMatch(/not a date|invalid/i);

    // A third run sends nothing more.
    const requests = emulator.stats.snapshot().requests;
    const third = await cli(args('state', 'third.csv'));
    expect(third.stdout).toMatch(/already delivered:\s+200/);
    expect(emulator.stats.snapshot().requests).toBe(requests);
  }, 180_000);
});

describe('a dry run counts the parts', () => {
  const FLAT = '{start:yyyyMMdd-HHmmss}_{direction:in=1,out=2}_{local}_{remote}_{callId}';
  it("estimates each file's parts from its declared length and the part limit; OVERSIZE=reject names it", async () => {
    const dir = path.join(work, 'big');
    await mkdir(dir, { recursive: true });
    const make = (file: string, codec: string[]): Promise<unknown> =>
      run('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'sine=f=300:d=10', '-ar', '8000', ...codec, '-y', file]);
    // 10 s at 8 kHz: 160,044 bytes kept as they are; 160,000 + a header converted from Opus.
    await make(path.join(dir, '20250301-090000_in_100_200_big1.wav'), ['-c:a', 'pcm_s16le']);
    await make(path.join(dir, '20250301-090000_in_100_200_big2.opus'), ['-ar', '48000', '-c:a', 'libopus']);
    const dry = async (policy: string): Promise<{ rows: ReportRow[]; stdout: string }> => {
      const report = path.join(work, `big-${policy}.csv`);
      const state = path.join(work, `big-${policy}-state`);
      const result = await cli(
        ['import', dir, '--pattern', FLAT, '--defaults', DEFAULTS, '--state', state, '--report', report, '--dry-run'],
        { MAX_PART_BYTES: '65536', OVERSIZE: policy },
      );
      return { rows: parseReport(await readFile(report, 'utf8')), stdout: result.stdout };
    };
    const requests = emulator.stats.snapshot().requests;
    const split = await dry('split');
    expect(split.rows.map((r) => [r.status, r.parts])).toEqual([
      ['would-send', '3'],
      ['would-send', '3'],
    ]);
    expect(split.stdout).toMatch(/would send: +2 \([\d.]+ \w+ of audio, about 6 recordings in Imagicle\)/);
    const reject = await dry('reject');
    expect(reject.rows.map((r) => r.status)).toEqual(['failed', 'failed']);
    expect(reject.rows[0]!.error).toMatch(/more than the limit of 65536 bytes per file \(OVERSIZE=reject\)/);
    expect(emulator.stats.snapshot().requests).toBe(requests);
  }, 60_000);
});

describe('import from a manifest and sidecars', () => {
  it('takes the manifest over the sidecar over the pattern, merges two legs, and keeps 409 failed', async () => {
    await emulator.store.clear();
    const dir = path.join(work, 'export');
    await mkdir(path.join(dir, 'audio'), { recursive: true });
    const sine = (file: string, f: number, d: number): Promise<unknown> =>
      run('ffmpeg', [
        '-v',
        'error',
        '-f',
        'lavfi',
        '-i',
        `sine=f=${f}:d=${d}`,
        '-ar',
        '8000',
        '-y',
        path.join(dir, 'audio', file),
      ]);
    await Promise.all([
      sine('a-local.wav', 300, 0.6),
      sine('a-remote.wav', 500, 0.4),
      sine('b.wav', 350, 0.3),
      sine('c.wav', 450, 0.3),
      sine('d.wav', 550, 0.3),
    ]);
    // The sidecar of b gives localParty; the manifest's notes win over the sidecar's.
    await writeFile(
      path.join(dir, 'audio', 'b.json'),
      JSON.stringify({ localParty: { username: 'side', phoneNumber: '7' }, notes: 'sidecar' }),
    );
    await writeFile(
      path.join(dir, 'calls.csv'),
      [
        'file,remoteFile,startDateTime,direction,localUsername,localPhoneNumber,remotePhoneNumber,pbxCallId,notes,preserved',
        'audio/a-local.wav,audio/a-remote.wav,2025-03-01T09:00:00,outgoing,ann,201,555,m-a,"two legs, one call",true',
        'audio/b.wav,,2025-03-01T10:00:00+01:00,1,,,556,m-b,manifest,',
        'audio/c.wav,,2025-03-01T11:00:00Z,2,cid,203,557,m-c,,',
        'audio/d.wav,,,1,dan,204,,m-d,,',
      ].join('\n'),
    );
    emulator.faults.add({ status: 409, body: { reason: 1, message: 'startDateTime is outside the retention period' } });
    // The first upload gets the 409: with two files in flight (one converting while the other delivers), which one
    // comes first is not fixed.
    const result = await cli([
      'import',
      path.join(dir, 'calls.csv'),
      '--timezone',
      'America/New_York',
      '--state',
      path.join(work, 'm-state'),
      '--report',
      path.join(work, 'm.csv'),
      '--concurrency',
      '1',
    ]);
    expect(result.code).toBe(1);
    const rows = parseReport(await readFile(path.join(work, 'm.csv'), 'utf8'));
    const row = (p: string): ReportRow => rows.find((r) => r.path === p)!;
    const sent = ['audio/a-local.wav', 'audio/b.wav', 'audio/c.wav'];
    const refused = sent.filter((p) => row(p).status === 'failed');
    expect(refused).toHaveLength(1);
    expect(row(refused[0]!).error).toMatch(/409.*retention/);
    expect(sent.filter((p) => row(p).status === 'delivered')).toHaveLength(2);
    expect(row('audio/d.wav').status).toBe('invalid');
    expect(row('audio/d.wav').error).toMatch(/startDateTime/);
    expect(emulator.stats.snapshot().faulted).toBe(1);
    expect(emulator.store.list()).toHaveLength(2);

    // Not retried by a rerun; --retry-failed sends it (the fault is spent).
    const requests = emulator.stats.snapshot().requests;
    await cli(['import', path.join(dir, 'calls.csv'), '--state', path.join(work, 'm-state')]);
    expect(emulator.stats.snapshot().requests).toBe(requests);
    await cli([
      'import',
      path.join(dir, 'calls.csv'),
      '--timezone',
      'America/New_York',
      '--state',
      path.join(work, 'm-state'),
      '--retry-failed',
    ]);
    const got = new Map(emulator.store.list().map((r) => [r.metadata.pbxCallId, r]));
    expect(got.size).toBe(3);
    expect(got.get('m-b')!.metadata).toMatchObject({
      startDateTime: '2025-03-01T10:00:00+01:00',
      direction: 1,
      localParty: { username: 'side', phoneNumber: '7' },
      notes: 'manifest',
    });
    expect(got.get('m-c')!.metadata).toMatchObject({
      localParty: { username: 'cid', phoneNumber: '203' },
      remoteParty: { phoneNumber: '557' },
    });
    // Two legs → one stereo recording.
    const a = got.get('m-a')!;
    expect(a.format.channels).toBe(2);
    expect(a.format.durationSeconds).toBeCloseTo(0.6, 2);
    expect(a.metadata).toMatchObject({
      startDateTime: '2025-03-01T14:00:00.000Z',
      direction: 2,
      preserved: true,
      notes: 'two legs, one call',
    });
  }, 120_000);

  it('refuses bad usage with exit code 2', async () => {
    const bad = await cli([
      'import',
      path.join(work, 'calls'),
      '--pattern',
      '{start:yyyy}_{nope}',
      '--timezone',
      'Mars/Olympus',
      '--defaults',
      '{',
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--pattern/);
    expect(bad.stderr).toMatch(/--timezone/);
    expect(bad.stderr).toMatch(/--defaults/);
    expect((await cli(['import', path.join(work, 'nothing-here')])).code).toBe(2);
  });
});

describe('the source files', () => {
  it('are read where they are and never written: WAV headers needing repair are repaired on a copy', async () => {
    await emulator.store.clear();
    const dir = path.join(work, 'repair');
    await mkdir(dir, { recursive: true });
    const names = [
      '20250301-090000_in_201_555_rz.wav',
      '20250301-100000_out_202_556_rf.wav',
      '20250301-110000_in_203_557_pt.wav',
    ];
    await copyFile(fixture('pcm16-size-zero.wav'), path.join(dir, names[0]!));
    await copyFile(fixture('pcm16-size-ffff.wav'), path.join(dir, names[1]!));
    await copyFile(fixture('pcm16-mono.wav'), path.join(dir, names[2]!));
    const before = await Promise.all(names.map((n) => sha256File(path.join(dir, n))));
    // What the earlier tests' kill -9 left in the work folder is theirs.
    const leftBefore = await readdir(path.join(work, 'tmp')).catch(() => []);
    const result = await cli([
      'import',
      dir,
      '--pattern',
      '{start:yyyyMMdd-HHmmss}_{direction:in=1,out=2}_{local}_{remote}_{callId}',
      '--defaults',
      DEFAULTS,
      '--state',
      path.join(work, 'repair-state'),
    ]);
    expect(result.code, result.stderr).toBe(0);
    const delivered = emulator.store.list();
    expect(delivered.map((r) => r.metadata.pbxCallId).sort()).toEqual(['pt', 'rf', 'rz']);
    for (const r of delivered) {
      expect(r.format.codec).toBe('pcm_s16le');
      expect(parseIsoDuration(r.metadata.duration)).toBeCloseTo(r.format.durationSeconds, 2);
    }
    expect(await Promise.all(names.map((n) => sha256File(path.join(dir, n))))).toEqual(before);
    // This run left nothing in the work folder.
    expect(await readdir(path.join(work, 'tmp')).catch(() => [])).toEqual(leftBefore);
  }, 60_000);
});
