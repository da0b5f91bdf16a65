/**
 * npm run bench: each case runs side by side with its baseline in the same
 * run, on loopback, against the emulator in its own process. Prints a table
 * and writes it, with the machine's CPU and memory, to docs/benchmarks.md.
 *
 *   (a) 1 h stereo Opus through the gateway  vs  ffmpeg to the same target, then curl to the emulator
 *   (b) compliant 100 MB WAV passed through   vs  curl straight to the emulator
 *   (c) 5 h raw GSM split and delivered (time, parts)
 *   (d) peak RSS of the gateway during (a), (b), (c) and a 1 GB upload
 *   (e) 8 concurrent 1-minute uploads         vs  8 bare ffmpeg transcodes, 2 at a time
 *   (g) distributed: 48 different 3-minute calls, 1 api + 2 workers vs 1 worker (private redis-server)
 *   (h) import of 200 different 3-minute calls vs  bare ffmpeg on the same files, 2 at a time (bench/import.ts)
 *
 *   (f) 24 different 3-minute stereo Opus calls, 4 clients at once  vs  bare ffmpeg 2 at a time, then curl
 *   (dtmf) 1 h stereo Opus call with a keypad tone every 5 minutes: DTMF=mask  vs  DTMF=off (issue 22)
 *
 * BENCH_ONLY=a,b,f (any letters, or dtmf, comma-separated) runs those cases alone and prints them (docs/benchmarks.md is left as
 * it is); BENCH_ONLY=g or BENCH_ONLY=h runs that case alone.
 *
 * BENCH_ONLY=outage (issue 21, bench/outage.ts) runs the weekend outage alone: 2,000 and 20,000 recordings queued
 * while Imagicle answers 503, then drained (spool and distributed mode; about an hour with its default 3 runs). It
 * is not part of a full run; it writes its own table into docs/benchmarks.md, between its markers.
 *
 * Inputs are generated with ffmpeg (lavfi) into bench/work/ and reused.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { benchImport } from './import.js';
import { benchOutage } from './outage.js';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WORK = path.join(ROOT, 'bench', 'work');
const MAIN = path.join(ROOT, 'dist', 'main.js');
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
const NOTES_HEADING = '## Notes';
/** BENCH_ONLY=a,b,f: only those rows, printed (docs/benchmarks.md is left as it is). */
const ONLY = process.env.BENCH_ONLY;
const ONLY_CASES = new Set(
  (ONLY ?? '')
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c !== ''),
);
const wants = (c: string): boolean => ONLY === undefined || ONLY_CASES.has(c);
const METADATA = JSON.stringify({
  startDateTime: '2026-11-29T10:15:00.0000000Z',
  direction: 1,
  localParty: { username: 'bench', phoneNumber: '100' },
  remoteParty: { phoneNumber: '200' },
});

interface Proc {
  child: ChildProcess;
  url: string;
  peakRssMb(): number;
  stop(): Promise<void>;
}

async function generate(name: string, args: string[]): Promise<string> {
  const file = path.join(WORK, name);
  if (existsSync(file)) return file;
  const tmp = `${file}.tmp${path.extname(name)}`;
  process.stdout.write(`generating ${name}...\n`);
  await run('ffmpeg', ['-v', 'error', ...args, '-y', tmp], { maxBuffer: 1 << 20 });
  await run('mv', [tmp, file]);
  return file;
}

/** Starts `node dist/main.js <command>` and waits for its "listening" log line. */
/** Every process started, so a failed run does not leave them behind. */
const started = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of started) child.kill('SIGKILL');
});

async function startNode(command: string, env: Record<string, string>, marker: RegExp): Promise<Proc> {
  const child = spawn(
    process.execPath,
    [MAIN, command, ...(command === 'emulator' ? ['--port', '0', '--dir', path.join(WORK, 'emulator')] : [])],
    {
      env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  started.add(child);
  child.once('exit', () => started.delete(child));
  let peakKb = 0;
  const sampler = setInterval(() => {
    try {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
      peakKb = Math.max(peakKb, hwm);
    } catch {
      // The process has exited.
    }
  }, 100);
  const url = await new Promise<string>((resolve, reject) => {
    let buffer = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      for (const line of buffer.split('\n')) {
        if (marker.test(line)) {
          const parsed = JSON.parse(line) as { url: string };
          resolve(parsed.url);
        }
      }
      buffer = buffer.slice(buffer.lastIndexOf('\n') + 1);
    });
    child.stderr!.on('data', (c: Buffer) => process.stderr.write(c));
    child.on('exit', (code) => reject(new Error(`${command} exited with ${code}`)));
  });
  child.stdout!.resume();
  return {
    child,
    url,
    peakRssMb: () => peakKb / 1024,
    stop: async () => {
      clearInterval(sampler);
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

let uploads = 0;
/** Each upload is its own call (its own pbxCallId), so the gateway's duplicate detection does not merge them. */
const callMetadata = (): string =>
  JSON.stringify({ ...JSON.parse(METADATA), pbxCallId: `bench-${process.pid}-${++uploads}` });

async function curlUpload(
  url: string,
  file: string,
  metadata = callMetadata(),
): Promise<{ status: number; body: string }> {
  // Imagicle wants a WAV content type; the gateway takes anything (curl's guess is fine there).
  const type = file.endsWith('.wav') ? ';type=audio/wave' : '';
  const { stdout } = await run(
    'curl',
    [
      '-sS',
      '-o',
      '-',
      '-w',
      '\n%{http_code}',
      '-F',
      `jsondata=${metadata};type=application/json`,
      '-F',
      `attachment=@${file}${type}`,
      url,
    ],
    { maxBuffer: 64 << 20 },
  );
  const cut = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
}

/** One untimed 5-second stereo Opus call through a freshly started gateway. */
async function warmUp(url: string, emulator: Proc): Promise<void> {
  const file = await generate('warm-up-5s.opus', [
    ...['-f', 'lavfi', '-i', 'sine=f=300:r=48000:d=5', '-f', 'lavfi', '-i', 'anoisesrc=r=48000:a=0.05:d=5'],
    ...['-filter_complex', '[0][1]amerge=inputs=2', '-c:a', 'libopus', '-b:a', '32k'],
  ]);
  const r = await curlUpload(url, file);
  if (r.status !== 201) throw new Error(`warm-up: gateway answered ${r.status}: ${r.body}`);
  await clearEmulator(emulator);
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const started = performance.now();
  const value = await fn();
  return { ms: performance.now() - started, value };
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** WAV duration for the baseline's metadata (the emulator checks it). */
async function wavIsoDuration(file: string): Promise<string> {
  const { stdout } = await run('ffprobe', [
    '-v',
    'error',
    '-show_entries',
    'stream=duration_ts,sample_rate',
    '-of',
    'json',
    file,
  ]);
  const s = (JSON.parse(stdout) as { streams: Array<{ duration_ts: number; sample_rate: string }> }).streams[0]!;
  return `PT${(s.duration_ts / Number(s.sample_rate)).toFixed(3)}S`;
}

async function clearEmulator(emulator: Proc): Promise<void> {
  await fetch(`${emulator.url}/emulator/recordings`, { method: 'DELETE' });
}

interface Row {
  case: string;
  gateway: string;
  baseline: string;
  ratio: string;
  target: string;
  peakRss: string;
}

async function main(): Promise<void> {
  await mkdir(WORK, { recursive: true });
  if (!existsSync(MAIN)) throw new Error('run `npm run build` first (npm run bench does)');
  // The outage (issue 21) starts its own emulators and gateways, and takes an hour at full size: only on demand.
  if (ONLY === 'outage') return benchOutage({ work: WORK, main: MAIN, root: ROOT });
  // Only the inputs of the cases that run are generated (BENCH_ONLY).
  const input = (c: string, name: string, args: string[]): Promise<string> =>
    wants(c) ? generate(name, args) : Promise.resolve('');
  const inputs: Array<Promise<string>> = [
    input('a', 'call-1h-stereo.opus', [
      '-f',
      'lavfi',
      '-i',
      'sine=f=220:r=48000:d=3600',
      '-f',
      'lavfi',
      '-i',
      'anoisesrc=r=48000:a=0.05:d=3600:seed=7',
      '-filter_complex',
      '[0][1]amerge=inputs=2',
      '-c:a',
      'libopus',
      '-b:a',
      '32k',
    ]),
    input('b', 'compliant-100mb.wav', ['-f', 'lavfi', '-i', 'sine=f=440:r=8000:d=6553', '-c:a', 'pcm_s16le']),
    input('c', 'call-5h.gsm', [
      '-f',
      'lavfi',
      '-i',
      'anoisesrc=r=8000:a=0.1:d=18000:seed=3',
      '-c:a',
      'libgsm',
      '-f',
      'gsm',
    ]),
    input('d', 'upload-1gb.wav', [
      '-f',
      'lavfi',
      '-i',
      'anullsrc=r=16000:cl=stereo',
      '-t',
      '16777',
      '-c:a',
      'pcm_s16le',
    ]),
    input('e', 'call-1min.ogg', ['-f', 'lavfi', '-i', 'sine=f=300:r=16000:d=60', '-c:a', 'libvorbis']),
  ];
  const [opus1h, wav100mb, gsm5h, wav1gb, minute] = (await Promise.all(inputs)) as [
    string,
    string,
    string,
    string,
    string,
  ];
  // (dtmf): (a)'s call with a key ('1', 60 ms at −10 dBFS per tone) every 5 minutes on the right channel.
  const dtmf1h = wants('dtmf')
    ? await generate('call-1h-stereo-dtmf.opus', [
        ...['-f', 'lavfi', '-i', 'sine=f=220:r=48000:d=3600'],
        ...['-f', 'lavfi', '-i', 'anoisesrc=r=48000:a=0.05:d=3600:seed=7'],
        ...[
          '-f',
          'lavfi',
          '-i',
          "aevalsrc='lt(mod(t,300),0.06)*0.316*(sin(2*PI*697*t)+sin(2*PI*1209*t))':s=48000:d=3600",
        ],
        ...['-filter_complex', '[1][2]amix=inputs=2:normalize=0[right];[0][right]amerge=inputs=2'],
        ...['-c:a', 'libopus', '-b:a', '32k'],
      ])
    : '';

  const emulator = await startNode('emulator', {}, /emulator listening/i);
  const gatewayEnv = {
    IMAGICLE_URL: emulator.url,
    PORT: '0',
    HOST: '127.0.0.1',
    TMP_DIR: path.join(WORK, 'tmp'),
    ALLOW_ANONYMOUS: 'true',
    LOG_LEVEL: 'warn',
  };
  const startGateway = (env: Record<string, string> = {}) =>
    startNode('serve', { ...gatewayEnv, LOG_LEVEL: 'info', ...env }, /gateway listening/);
  const recordingsUrl = (base: string) => `${base}/fw/Apps/Recorder/WebAPI/Recordings`;
  const rows: Row[] = [];
  const push = (row: Row): void => {
    rows.push(row);
    process.stdout.write(`${JSON.stringify(row)}\n`);
  };
  const ffmpegOnly: number[] = [];
  // 3-minute stereo calls, each different: 4 for (g), 24 for (f).
  const callSources = await Promise.all(
    Array.from({ length: wants('f') ? 24 : wants('g') ? 4 : 0 }, (_, k) =>
      generate(`call-3min-${k}.opus`, [
        '-f',
        'lavfi',
        '-i',
        `anoisesrc=r=48000:a=0.05:d=180:seed=${k + 11}`,
        '-f',
        'lavfi',
        '-i',
        `sine=f=${200 + 50 * k}:r=48000:d=180`,
        '-filter_complex',
        '[0][1]amix=inputs=2',
        '-c:a',
        'libopus',
        '-b:a',
        '24k',
      ]),
    ),
  );
  if (ONLY === 'g' || ONLY === 'h') {
    if (ONLY === 'g') push(await distributedScaling(emulator, callSources));
    else
      push(
        await benchImport({ work: WORK, main: MAIN, emulatorUrl: emulator.url, clear: () => clearEmulator(emulator) }),
      );
    await emulator.stop();
    return;
  }

  // (a) 1 h stereo Opus.
  if (wants('a')) {
    const gw = await startGateway();
    const g: number[] = [];
    const b: number[] = [];
    // Steady state, as a running service is: the input in the page cache for both sides, and one untimed short
    // upload first (the first request of a process loads modules and compiles code; run 1 used to be 0.3–1.5 s
    // slower than the others).
    await readFile(opus1h);
    await warmUp(recordingsUrl(gw.url), emulator);
    for (let i = 0; i < REPEATS; i++) {
      const viaGateway = await timed(() => curlUpload(recordingsUrl(gw.url), opus1h));
      if (viaGateway.value.status !== 201)
        throw new Error(`(a) gateway answered ${viaGateway.value.status}: ${viaGateway.value.body}`);
      g.push(viaGateway.ms);
      await clearEmulator(emulator);
      const out = path.join(WORK, 'baseline-a.wav');
      const baseline = await timed(async () => {
        const t = await timed(() =>
          run('ffmpeg', ['-v', 'error', '-i', opus1h, '-ac', '2', '-ar', '8000', '-c:a', 'pcm_s16le', '-y', out]),
        );
        ffmpegOnly.push(t.ms);
        const meta = JSON.stringify({ ...JSON.parse(callMetadata()), duration: await wavIsoDuration(out) });
        const r = await curlUpload(recordingsUrl(emulator.url), out, meta);
        if (r.status !== 201) throw new Error(`(a) baseline: emulator answered ${r.status}: ${r.body}`);
      });
      b.push(baseline.ms);
      const pair = `gateway ${(g[i]! / 1000).toFixed(2)} s, baseline ${(baseline.ms / 1000).toFixed(2)} s`;
      process.stdout.write(`(a) run ${i + 1}: ${pair}\n`);
      await clearEmulator(emulator);
      await rm(out, { force: true });
    }
    push({
      case: '(a) 1 h stereo Opus → PCM16 8 kHz stereo, delivered',
      gateway: `${(median(g) / 1000).toFixed(2)} s`,
      baseline: `${(median(b) / 1000).toFixed(2)} s (ffmpeg + curl); ffmpeg alone ${(median(ffmpegOnly) / 1000).toFixed(2)} s`,
      ratio: (median(g) / median(b)).toFixed(2),
      target: '≤ 1.05',
      peakRss: `${gw.peakRssMb().toFixed(0)} MB`,
    });
    push({
      case: '(issue 2) same file, gateway vs ffmpeg alone',
      gateway: `${(median(g) / 1000).toFixed(2)} s`,
      baseline: `${(median(ffmpegOnly) / 1000).toFixed(2)} s`,
      ratio: (median(g) / median(ffmpegOnly)).toFixed(2),
      target: '(reported)',
      peakRss: '',
    });
    await gw.stop();

    // The same upload without the spool: DELIVERY=sync writes nothing durable before delivering.
    const direct = await startGateway({ DELIVERY: 'sync' });
    await warmUp(recordingsUrl(direct.url), emulator);
    const d: number[] = [];
    for (let i = 0; i < REPEATS; i++) {
      const r = await timed(() => curlUpload(recordingsUrl(direct.url), opus1h));
      if (r.value.status !== 201) throw new Error(`(a, sync) gateway answered ${r.value.status}: ${r.value.body}`);
      d.push(r.ms);
      await clearEmulator(emulator);
    }
    push({
      case: "(a') the same with DELIVERY=sync (no spool, no fsync)",
      gateway: `${(median(d) / 1000).toFixed(2)} s`,
      baseline: `${(median(b) / 1000).toFixed(2)} s (ffmpeg + curl, as in a)`,
      ratio: (median(d) / median(b)).toFixed(2),
      target: '≤ 1.10',
      peakRss: `${direct.peakRssMb().toFixed(0)} MB`,
    });
    await direct.stop();
  }

  // (b) 100 MB compliant WAV passed through.
  if (wants('b')) {
    const gw = await startGateway();
    const g: number[] = [];
    const b: number[] = [];
    const duration = await wavIsoDuration(wav100mb);
    for (let i = 0; i < REPEATS; i++) {
      const viaGateway = await timed(() => curlUpload(recordingsUrl(gw.url), wav100mb));
      if (viaGateway.value.status !== 201)
        throw new Error(`(b) gateway answered ${viaGateway.value.status}: ${viaGateway.value.body}`);
      g.push(viaGateway.ms);
      await clearEmulator(emulator);
      const direct = await timed(() =>
        curlUpload(recordingsUrl(emulator.url), wav100mb, JSON.stringify({ ...JSON.parse(callMetadata()), duration })),
      );
      if (direct.value.status !== 201) throw new Error(`(b) direct: ${direct.value.status} ${direct.value.body}`);
      b.push(direct.ms);
      const pair = `gateway ${(g[i]! / 1000).toFixed(2)} s, baseline ${(direct.ms / 1000).toFixed(2)} s`;
      process.stdout.write(`(b) run ${i + 1}: ${pair}\n`);
      await clearEmulator(emulator);
    }
    push({
      case: `(b) compliant ${((await stat(wav100mb)).size / 1e6).toFixed(0)} MB WAV, passed through`,
      gateway: `${(median(g) / 1000).toFixed(2)} s`,
      baseline: `${(median(b) / 1000).toFixed(2)} s (curl straight to the emulator)`,
      ratio: (median(g) / median(b)).toFixed(2),
      target: '≤ 2.2',
      peakRss: `${gw.peakRssMb().toFixed(0)} MB`,
    });
    await gw.stop();
  }

  // (c) 5 h GSM, split.
  if (wants('c')) {
    const gw = await startGateway();
    const r = await timed(() => curlUpload(recordingsUrl(gw.url), gsm5h));
    if (r.value.status !== 201) throw new Error(`(c) gateway answered ${r.value.status}: ${r.value.body}`);
    const parts = (JSON.parse(r.value.body) as { parts: Array<{ bytes: number; duration: string }> }).parts;
    push({
      case: '(c) 5 h raw GSM → PCM16 8 kHz (288 MB), split and delivered',
      gateway: `${(r.ms / 1000).toFixed(2)} s, ${parts.length} parts (${parts.map((p) => `${(p.bytes / 1e6).toFixed(1)} MB`).join(' + ')})`,
      baseline: '',
      ratio: '',
      target: 'every part ≤ 256 MiB',
      peakRss: `${gw.peakRssMb().toFixed(0)} MB`,
    });
    await clearEmulator(emulator);
    await gw.stop();
  }

  // (d) 1 GB compliant upload: received, passed through, split into parts and delivered.
  if (wants('d')) {
    const gw = await startGateway();
    const r = await timed(() => curlUpload(recordingsUrl(gw.url), wav1gb));
    if (r.value.status !== 201) throw new Error(`(d) gateway answered ${r.value.status}: ${r.value.body}`);
    const parts = (JSON.parse(r.value.body) as { parts: unknown[] }).parts.length;
    await clearEmulator(emulator);
    push({
      case: `(d) ${((await stat(wav1gb)).size / 1e9).toFixed(2)} GB compliant WAV upload: received, split, delivered`,
      gateway: `${(r.ms / 1000).toFixed(2)} s, ${parts} parts`,
      baseline: '',
      ratio: '',
      target: 'peak RSS ≤ 200 MB',
      peakRss: `${gw.peakRssMb().toFixed(0)} MB`,
    });
    await gw.stop();
  }

  // (e) 8 concurrent 1-minute uploads vs 8 bare ffmpeg transcodes, 2 at a time.
  if (wants('e')) {
    const gw = await startGateway();
    const g: number[] = [];
    const b: number[] = [];
    for (let i = 0; i < REPEATS; i++) {
      const viaGateway = await timed(() =>
        Promise.all(Array.from({ length: 8 }, () => curlUpload(recordingsUrl(gw.url), minute))),
      );
      const bad = viaGateway.value.find((r) => r.status !== 201);
      if (bad) throw new Error(`(e) gateway answered ${bad.status}: ${bad.body}`);
      g.push(viaGateway.ms);
      await clearEmulator(emulator);
      const baseline = await timed(async () => {
        for (let pair = 0; pair < 4; pair++) {
          await Promise.all(
            [0, 1].map((k) =>
              run('ffmpeg', [
                '-v',
                'error',
                '-i',
                minute,
                '-ar',
                '8000',
                '-c:a',
                'pcm_s16le',
                '-y',
                path.join(WORK, `e-${pair}-${k}.wav`),
              ]),
            ),
          );
        }
      });
      b.push(baseline.ms);
    }
    push({
      case: '(e) 8 concurrent 1-minute Vorbis uploads (throughput)',
      gateway: `${(median(g) / 1000).toFixed(2)} s`,
      baseline: `${(median(b) / 1000).toFixed(2)} s (8 bare ffmpeg, 2 at a time, no HTTP)`,
      ratio: (median(g) / median(b)).toFixed(2),
      target: '(reported)',
      peakRss: `${gw.peakRssMb().toFixed(0)} MB`,
    });
    await clearEmulator(emulator);
    await gw.stop();
  }
  // (dtmf) The 1 h call with DTMF=mask against DTMF=off: detection beside the stereo analysis, 12 tones masked.
  if (wants('dtmf')) push(await dtmfCost(startGateway, emulator, dtmf1h));
  // (f) 24 different 3-minute stereo Opus calls, 4 clients at once, in the default durable mode.
  if (wants('f')) push(await concurrentCalls(emulator, startGateway, callSources));
  // (g) Distributed mode: 48 different 3-minute calls through one api process, 1 worker vs 2 (concurrency 1 each).
  if (wants('g')) push(await distributedScaling(emulator, callSources));
  // (h) import of N different 3-minute calls vs bare ffmpeg, 2 at a time.
  if (wants('h')) {
    push(
      await benchImport({ work: WORK, main: MAIN, emulatorUrl: emulator.url, clear: () => clearEmulator(emulator) }),
    );
  }
  await emulator.stop();
  if (ONLY !== undefined) return;

  const cpu =
    /model name\s*:\s*(.+)/.exec(await readFile('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const ffmpegVersion = (await run('ffmpeg', ['-version'])).stdout.split('\n')[0];
  const header = '| case | gateway | baseline | ratio | target | gateway peak RSS |\n|---|---|---|---|---|---|';
  const table = [
    header,
    ...rows.map((r) => `| ${r.case} | ${r.gateway} | ${r.baseline} | ${r.ratio} | ${r.target} | ${r.peakRss} |`),
  ].join('\n');
  const doc = `# Benchmarks

Made by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}: ${os.availableParallelism()} × ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}, ${ffmpegVersion}.
Every case runs against the emulator in its own process on loopback; the gateway runs as \`node dist/main.js serve\` in its own
process (its peak RSS is VmHWM, sampled every 100 ms); uploads are made with curl on both sides. Times are medians of ${REPEATS} runs
(cases a, b, e), run alternately with their baseline in the same run.

${table}
`;
  process.stdout.write(`\n${table}\n`);
  await mkdir(path.join(ROOT, 'docs'), { recursive: true });
  const file = path.join(ROOT, 'docs', 'benchmarks.md');
  // Everything from the "## Notes" heading on is written by hand (single-case runs, history): kept as it is.
  const previous = existsSync(file) ? await readFile(file, 'utf8') : '';
  const notes = previous.indexOf(NOTES_HEADING);
  await writeFile(file, notes >= 0 ? `${doc}\n${previous.slice(notes)}` : doc);
}

/** User + system seconds of a process and of its children it has waited for (ffmpeg), from /proc. */
function cpuSeconds(proc: Proc): number {
  const stat = readFileSync(`/proc/${proc.child.pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces, in parentheses): utime is the 14th field overall.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
  return ticks / 100;
}

/** (dtmf): two gateways, DTMF=off and DTMF=mask, the same 1 h call through each, alternately. */
async function dtmfCost(
  startGateway: (env?: Record<string, string>) => Promise<Proc>,
  emulator: Proc,
  call: string,
): Promise<Row> {
  const off = await startGateway({ DTMF: 'off' });
  const mask = await startGateway({ DTMF: 'mask' });
  await readFile(call);
  await warmUp(`${off.url}/fw/Apps/Recorder/WebAPI/Recordings`, emulator);
  await warmUp(`${mask.url}/fw/Apps/Recorder/WebAPI/Recordings`, emulator);
  const o: number[] = [];
  const m: number[] = [];
  // CPU seconds of the gateway and its ffmpeg children per upload: a second measure that a busy machine disturbs less.
  const oCpu: number[] = [];
  const mCpu: number[] = [];
  let tones = 0;
  for (let i = 0; i < REPEATS; i++) {
    let cpu = cpuSeconds(off);
    const plain = await timed(() => curlUpload(`${off.url}/v1/recordings`, call));
    if (plain.value.status !== 201) throw new Error(`(dtmf) DTMF=off answered ${plain.value.status}`);
    o.push(plain.ms);
    oCpu.push(cpuSeconds(off) - cpu);
    await clearEmulator(emulator);
    cpu = cpuSeconds(mask);
    const masked = await timed(() => curlUpload(`${mask.url}/v1/recordings`, call));
    if (masked.value.status !== 201) throw new Error(`(dtmf) DTMF=mask answered ${masked.value.status}`);
    m.push(masked.ms);
    mCpu.push(cpuSeconds(mask) - cpu);
    tones = (JSON.parse(masked.value.body) as { dtmf?: { tones: number } }).dtmf?.tones ?? -1;
    await clearEmulator(emulator);
    process.stdout.write(
      `(dtmf) run ${i + 1}: off ${(plain.ms / 1000).toFixed(2)} s (CPU ${oCpu[i]!.toFixed(2)} s), ` +
        `mask ${(masked.ms / 1000).toFixed(2)} s (CPU ${mCpu[i]!.toFixed(2)} s)\n`,
    );
  }
  await Promise.all([off.stop(), mask.stop()]);
  return {
    case: `(dtmf) 1 h stereo Opus call, a key every 5 min (${tones} tones masked): DTMF=mask vs DTMF=off`,
    gateway: `${(median(m) / 1000).toFixed(2)} s (CPU ${median(mCpu).toFixed(2)} s)`,
    baseline: `${(median(o) / 1000).toFixed(2)} s (DTMF=off; CPU ${median(oCpu).toFixed(2)} s)`,
    ratio: `${(median(m) / median(o)).toFixed(3)} (CPU ${(median(mCpu) / median(oCpu)).toFixed(3)})`,
    target: '≤ 1.03',
    peakRss: `${mask.peakRssMb().toFixed(0)} MB`,
  };
}

/**
 * (f): 24 different 3-minute stereo Opus calls, 4 clients each sending its share one after the other, through one
 * gateway in the default durable mode (DELIVERY=wait), against bare ffmpeg 2 at a time (the machine's
 * CONCURRENCY), each output then sent with curl to the emulator.
 */
async function concurrentCalls(
  emulator: Proc,
  startGateway: (env?: Record<string, string>) => Promise<Proc>,
  sources: string[],
): Promise<Row> {
  const gw = await startGateway();
  const url = (base: string): string => `${base}/fw/Apps/Recorder/WebAPI/Recordings`;
  const lanes = async (count: number, work: (file: string, lane: number) => Promise<void>): Promise<void> => {
    let next = 0;
    await Promise.all(
      Array.from({ length: count }, async (_, lane) => {
        while (next < sources.length) await work(sources[next++]!, lane);
      }),
    );
  };
  const g: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    const viaGateway = await timed(() =>
      lanes(4, async (file) => {
        const r = await curlUpload(url(gw.url), file);
        if (r.status !== 201) throw new Error(`(f) gateway answered ${r.status}: ${r.body}`);
      }),
    );
    g.push(viaGateway.ms);
    await clearEmulator(emulator);
    const baseline = await timed(() =>
      lanes(2, async (file, lane) => {
        const out = path.join(WORK, `f-${lane}.wav`);
        await run('ffmpeg', ['-v', 'error', '-i', file, '-ac', '2', '-ar', '8000', '-c:a', 'pcm_s16le', '-y', out]);
        const meta = JSON.stringify({ ...JSON.parse(callMetadata()), duration: await wavIsoDuration(out) });
        const r = await curlUpload(url(emulator.url), out, meta);
        if (r.status !== 201) throw new Error(`(f) baseline: emulator answered ${r.status}: ${r.body}`);
      }),
    );
    b.push(baseline.ms);
    await clearEmulator(emulator);
  }
  await gw.stop();
  const runs = (values: number[]): string => values.map((v) => (v / 1000).toFixed(2)).join(', ');
  return {
    case: `(f) ${sources.length} different 3-minute stereo Opus calls, 4 clients at once, delivered`,
    gateway: `${(median(g) / 1000).toFixed(2)} s (runs ${runs(g)})`,
    baseline: `${(median(b) / 1000).toFixed(2)} s (bare ffmpeg 2 at a time, each output sent with curl; runs ${runs(b)})`,
    ratio: (median(g) / median(b)).toFixed(2),
    target: '≤ 1.05',
    peakRss: `${gw.peakRssMb().toFixed(0)} MB`,
  };
}

/**
 * (g): one ROLE=api process and 1 or 2 ROLE=worker processes (SPOOL_CONCURRENCY=1) on a private redis-server;
 * 48 uploads with Prefer: respond-async, timed from the first upload to the 48th recording in the emulator.
 */
async function distributedScaling(emulator: Proc, sources: string[]): Promise<Row> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-redis-'));
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const redis = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
    ],
    {
      stdio: 'ignore',
    },
  );
  started.add(redis);
  await new Promise((r) => setTimeout(r, 500));
  const env = {
    IMAGICLE_URL: emulator.url,
    PORT: '0',
    HOST: '127.0.0.1',
    ALLOW_ANONYMOUS: 'true',
    QUEUE_URL: `redis://127.0.0.1:${port}/0`,
    BLOB_DIR: path.join(dir, 'blob'),
    TMP_DIR: path.join(dir, 'tmp'),
    SPOOL_CONCURRENCY: '1',
    LOG_LEVEL: 'info',
  };
  const api = await startNode('serve', { ...env, ROLE: 'api' }, /gateway listening/);
  const accepted = async (): Promise<number> =>
    ((await (await fetch(`${emulator.url}/emulator/stats`)).json()) as { accepted: number }).accepted;
  const once = async (workers: number): Promise<number> => {
    const procs = await Promise.all(
      Array.from({ length: workers }, () => startNode('serve', { ...env, ROLE: 'worker' }, /gateway listening/)),
    );
    await fetch(`${emulator.url}/emulator/stats`, { method: 'DELETE' });
    const t0 = performance.now();
    const answers = await Promise.all(
      Array.from({ length: 48 }, async (_, i) => {
        const { stdout } = await run('curl', [
          '-sS',
          '-o',
          '/dev/null',
          '-w',
          '%{http_code}',
          '-H',
          'Prefer: respond-async',
          '-F',
          `jsondata=${callMetadata()};type=application/json`,
          '-F',
          `attachment=@${sources[i % sources.length]}`,
          `${api.url}/fw/Apps/Recorder/WebAPI/Recordings`,
        ]);
        return Number(stdout);
      }),
    );
    if (answers.some((s) => s !== 202)) throw new Error(`(g) answers: ${answers.join(',')}`);
    while ((await accepted()) < 48) await new Promise((r) => setTimeout(r, 100));
    const ms = performance.now() - t0;
    await Promise.all(procs.map((p) => p.stop()));
    await clearEmulator(emulator);
    return ms;
  };
  const one = await once(1);
  const two = await once(2);
  await api.stop();
  redis.kill('SIGTERM');
  await rm(dir, { recursive: true, force: true });
  const rate = (ms: number): string => `${((48 * 180) / (ms / 1000) / 60).toFixed(0)} audio-min/s`;
  return {
    case: '(g) distributed: 48 different 3-minute Opus calls, 1 api + 2 workers vs 1 worker (concurrency 1 each)',
    gateway: `${(two / 1000).toFixed(1)} s (${rate(two)})`,
    baseline: `${(one / 1000).toFixed(1)} s (${rate(one)}, 1 worker)`,
    ratio: (one / two).toFixed(2),
    target: '(scaling: 1-worker time / 2-worker time)',
    peakRss: `${api.peakRssMb().toFixed(0)} MB (api)`,
  };
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
