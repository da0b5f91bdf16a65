/**
 * Bench case (h): `import` of N different 3-minute calls (Opus, 16 kHz, as
 * Teams/Zoom exports carry) into the emulator, against bare ffmpeg
 * converting the same files to the same target, 2 at a time. Both sides use
 * 2 workers; the import's time includes its node start, probing, hashing,
 * the state store and delivery. N: BENCH_IMPORT_FILES (default 200).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface ImportBenchRow {
  case: string;
  gateway: string;
  baseline: string;
  ratio: string;
  target: string;
  peakRss: string;
}

async function pool<T>(items: readonly T[], width: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** N different calls: a tone and noise with a seed of their own, so no two files are alike. */
async function generateCalls(dir: string, count: number): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const pad = (n: number): string => String(n).padStart(2, '0');
  const time = (i: number): string => `${pad(Math.floor(i / 3600) % 24)}${pad(Math.floor(i / 60) % 60)}${pad(i % 60)}`;
  const files = Array.from({ length: count }, (_, i) =>
    path.join(dir, `20260101-${time(i)}_in_${1000 + i}_555${i}_bench${i}.opus`),
  );
  const missing = files.filter((f) => !existsSync(f));
  if (missing.length > 0) process.stdout.write(`generating ${missing.length} 3-minute calls...\n`);
  await pool(missing, 2, async (file) => {
    const i = files.indexOf(file);
    const tmp = `${file}.tmp.opus`;
    await run('ffmpeg', [
      '-v',
      'error',
      '-f',
      'lavfi',
      '-i',
      `sine=f=${180 + i}:r=16000:d=180`,
      '-f',
      'lavfi',
      '-i',
      `anoisesrc=r=16000:a=0.03:d=180:seed=${i + 1}`,
      '-filter_complex',
      '[0][1]amix=inputs=2',
      '-ac',
      '1',
      '-c:a',
      'libopus',
      '-b:a',
      '24k',
      '-y',
      tmp,
    ]);
    await run('mv', [tmp, file]);
  });
  return files;
}

export async function benchImport(opts: {
  work: string;
  main: string;
  emulatorUrl: string;
  clear: () => Promise<void>;
}): Promise<ImportBenchRow> {
  const count = Number(process.env.BENCH_IMPORT_FILES ?? 200);
  const dir = path.join(opts.work, `import-${count}`);
  const files = await generateCalls(dir, count);
  const state = path.join(opts.work, 'import-state');
  const out = path.join(opts.work, 'import-baseline');
  await mkdir(out, { recursive: true });

  // Baseline: the same conversion (8 kHz 16-bit PCM WAV), 2 ffmpeg at a time, no probe, no delivery.
  const b0 = performance.now();
  await pool(files, 2, (file) =>
    run('ffmpeg', [
      '-v',
      'error',
      '-i',
      file,
      '-ar',
      '8000',
      '-ac',
      '1',
      '-c:a',
      'pcm_s16le',
      '-y',
      path.join(out, `${path.basename(file)}.wav`),
    ]),
  );
  const baselineMs = performance.now() - b0;

  await rm(state, { recursive: true, force: true });
  await opts.clear();
  const g0 = performance.now();
  const { stdout } = await run(
    process.execPath,
    [
      opts.main,
      'import',
      dir,
      '--concurrency',
      '2',
      '--state',
      state,
      '--pattern',
      '{start:yyyyMMdd-HHmmss}_{direction:in=1,out=2}_{local}_{remote}_{callId}',
      '--defaults',
      '{"localParty":{"username":"bench"}}',
    ],
    {
      env: {
        PATH: process.env.PATH ?? '',
        IMAGICLE_URL: opts.emulatorUrl,
        TMP_DIR: path.join(opts.work, 'tmp'),
        LOG_LEVEL: 'warn',
      },
      maxBuffer: 16 << 20,
    },
  );
  const gatewayMs = performance.now() - g0;
  if (!new RegExp(`delivered:\\s+${count}\\b`).test(stdout))
    throw new Error(`(h) import did not deliver every file:\n${stdout}`);
  await opts.clear();
  await rm(out, { recursive: true, force: true });
  return {
    case: `(h) import of ${count} different 3-minute Opus calls (2 at a time)`,
    gateway: `${(gatewayMs / 1000).toFixed(1)} s`,
    baseline: `${(baselineMs / 1000).toFixed(1)} s (bare ffmpeg on the same files, 2 at a time)`,
    ratio: (gatewayMs / baselineMs).toFixed(2),
    target: '≤ 1.1',
    peakRss: '',
  };
}
