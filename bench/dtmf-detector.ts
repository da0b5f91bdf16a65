/**
 * The DTMF detector's own CPU cost (issue 22), apart from the gateway: `npx tsx bench/dtmf-detector.ts`.
 *
 * Two 1 h stereo 8 kHz calls, fed to the detector in 1 MiB reads as media/analysis-follow.ts does:
 * - synthetic: the input of `BENCH_ONLY=dtmf npm run bench` (a 220 Hz tone on the left; noise and a key every
 *   5 minutes on the right), made with ffmpeg at 8 kHz (without the Opus round trip);
 * - speech: two espeak-ng voices taking turns, one per channel, the other channel near-silent (−70 dBFS noise),
 *   looped to the hour, with a key every 5 minutes on the right.
 *
 * Prints the CPU time of push + finish (median and minimum of DTMF_BENCH_REPEATS, default 3) and a digest of the
 * tones found, so a faster detector can be checked to find the same tones. Inputs go to bench/work/ and are reused.
 *
 * DTMF_BENCH_DETECTORS=a.ts,b.ts compares other copies of src/media/dtmf-detect.ts (say, from `git show`) with it,
 * their runs interleaved so that the machine's load falls on each alike.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { DtmfDetector } from '../src/media/dtmf-detect.js';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WORK = path.join(ROOT, 'bench', 'work');
const RATE = 8000;
const FRAMES = RATE * 3600;
const REPEATS = Number(process.env.DTMF_BENCH_REPEATS ?? 3);
/** Frames per read: 1 MiB of 16-bit stereo, as media/analysis-follow.ts reads. */
const READ_FRAMES = (1024 * 1024) / 4;

async function ffmpegRaw(name: string, args: string[]): Promise<Int16Array> {
  const file = path.join(WORK, name);
  if (!existsSync(file)) await run('ffmpeg', ['-v', 'error', ...args, '-f', 's16le', '-y', file]);
  const bytes = await readFile(file);
  return new Int16Array(bytes.buffer, bytes.byteOffset, bytes.length >> 1);
}

async function synthetic(): Promise<Int16Array> {
  return ffmpegRaw('dtmf-synthetic-1h.s16', [
    ...['-f', 'lavfi', '-i', `sine=f=220:r=${RATE}:d=3600`],
    ...['-f', 'lavfi', '-i', `anoisesrc=r=${RATE}:a=0.05:d=3600:seed=7`],
    ...[
      '-f',
      'lavfi',
      '-i',
      `aevalsrc='lt(mod(t,300),0.06)*0.316*(sin(2*PI*697*t)+sin(2*PI*1209*t))':s=${RATE}:d=3600`,
    ],
    ...['-filter_complex', '[1][2]amix=inputs=2:normalize=0[right];[0][right]amerge=inputs=2'],
  ]);
}

async function voice(name: string, espeakArgs: string[]): Promise<Int16Array> {
  const wav = path.join(WORK, `${name}.wav`);
  const text =
    'A contact centre takes card payments by phone. The customer types the card number and the security code on ' +
    'the keypad, and the agent reads back the amount, the date and the reference of the payment. Thank you for ' +
    'calling; is there anything else I can help you with today? Yes, I would like to change my address as well.';
  if (!existsSync(wav)) await run('espeak-ng', [...espeakArgs, '-w', wav, text]);
  return ffmpegRaw(`${name}.s16`, ['-i', wav, '-ar', String(RATE), '-ac', '1']);
}

/** Two voices taking turns, one per channel, looped to the hour; −70 dBFS noise; a key every 5 minutes on the right. */
async function speech(): Promise<Int16Array> {
  const a = await voice('speech-en', ['-v', 'en']);
  const b = await voice('speech-de', ['-v', 'de', '-p', '30']);
  const cycle = a.length + b.length;
  const out = new Int16Array(FRAMES * 2);
  let seed = 12345;
  const noise = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return Math.round((seed / 0x7fffffff - 0.5) * 20);
  };
  for (let i = 0; i < FRAMES; i++) {
    const t = i % cycle;
    const left = t < a.length ? a[t]! : 0;
    const right = t >= a.length ? b[t - a.length]! : 0;
    const s = (i % (300 * RATE)) / RATE;
    const key = s < 0.06 ? 0.316 * (Math.sin(2 * Math.PI * 697 * s) + Math.sin(2 * Math.PI * 1209 * s)) * 32767 : 0;
    out[2 * i] = left + noise();
    out[2 * i + 1] = Math.max(-32768, Math.min(32767, Math.round(right + key + noise())));
  }
  return out;
}

type Detectors = new (channels: number, rate: number) => DtmfDetector;

/** One pass over the hour: CPU ms, and the tones' count and digest. */
function once(Detector: Detectors, samples: Int16Array): { ms: number; tones: string } {
  const before = process.cpuUsage();
  const detector = new Detector(2, RATE);
  for (let f = 0; f < FRAMES; f += READ_FRAMES) {
    const frames = Math.min(READ_FRAMES, FRAMES - f);
    detector.pushInt16(samples.subarray(2 * f, 2 * (f + frames)), frames);
  }
  const tones = detector.finish();
  const used = process.cpuUsage(before);
  const digest = createHash('sha256').update(JSON.stringify(tones)).digest('hex').slice(0, 12);
  return { ms: (used.user + used.system) / 1000, tones: `${tones.length} tones, digest ${digest}` };
}

const modules = [
  path.join(ROOT, 'src', 'media', 'dtmf-detect.ts'),
  ...(process.env.DTMF_BENCH_DETECTORS ?? '')
    .split(',')
    .filter((m) => m !== '')
    .map((m) => path.resolve(m)),
];
const detectors = await Promise.all(
  modules.map(async (m) => ((await import(m)) as { DtmfDetector: Detectors }).DtmfDetector),
);

function measure(name: string, samples: Int16Array): void {
  const cpu = modules.map((): number[] => []);
  const tones = modules.map(() => '');
  for (let r = 0; r < REPEATS; r++) {
    detectors.forEach((Detector, d) => {
      const result = once(Detector, samples);
      cpu[d]!.push(result.ms);
      tones[d] = result.tones;
    });
  }
  modules.forEach((m, d) => {
    const runs = cpu[d]!.sort((x, y) => x - y);
    console.log(
      `${name}, ${path.relative(ROOT, m)}: CPU median ${runs[runs.length >> 1]!.toFixed(0)} ms, ` +
        `min ${runs[0]!.toFixed(0)} ms (${REPEATS} runs); ${tones[d]}`,
    );
  });
}

await mkdir(WORK, { recursive: true });
const [syn, sp] = [await synthetic(), await speech()];
const load = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
console.log(`1 h stereo 8 kHz, load average ${load}`);
measure('synthetic (the bench call)', syn);
measure('speech (two voices taking turns)', sp);
