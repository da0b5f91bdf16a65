/**
 * An independent level meter for the level tests: ffmpeg's own filters do
 * the measuring (astats per 20 ms window, astats over the whole channel,
 * ebur128's 4× true peak), the test only applies the documented gate
 * (docs/level.md: −70 dBFS absolute, then 10 dB below the mean of what
 * passes, until it settles) to the
 * window levels ffmpeg reports. None of the gateway's code is used.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface ChannelMeter {
  /** Gated speech level (dBFS RMS of 20 ms windows); null when nothing passes the gate. */
  speechDbfs: number | null;
  dcOffset: number;
  /** Sample peak (dBFS); -Infinity for digital silence. */
  peakDbfs: number;
  truePeakDbfs: number;
}

async function ffmpegLines(args: string[]): Promise<string> {
  const { stdout, stderr } = await run('ffmpeg', ['-hide_banner', '-nostdin', '-nostats', ...args], {
    maxBuffer: 256 * 1024 * 1024,
  });
  return `${stdout}\n${stderr}`;
}

/** Window mean squares per channel, from astats over 20 ms windows (160 samples at 8 kHz). */
async function windowPowers(file: string, channels: number, windowSamples: number): Promise<number[][]> {
  const out = await ffmpegLines([
    '-i',
    file,
    '-af',
    `asetnsamples=n=${windowSamples}:p=0,` +
      'astats=metadata=1:reset=1:measure_perchannel=RMS_level:measure_overall=none,ametadata=print:file=-',
    '-f',
    'null',
    '-',
  ]);
  const powers: number[][] = Array.from({ length: channels }, () => []);
  for (const m of out.matchAll(/lavfi\.astats\.(\d+)\.RMS_level=(-?[\d.]+|-inf|inf)/g)) {
    const db = m[2] === '-inf' ? -Infinity : Number(m[2]);
    powers[Number(m[1]) - 1]?.push(10 ** (db / 10));
  }
  return powers;
}

function gatedDb(powers: number[]): number | null {
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  let passed = powers.filter((p) => p >= 1e-7);
  if (passed.length === 0) return null;
  // The relative gate, 10 dB under the mean of what passes it, applied until it settles.
  for (let gate = 1e-7, i = 0; i < 50; i++) {
    const next = Math.max(1e-7, mean(passed) / 10);
    if (next === gate) break;
    gate = next;
    passed = powers.filter((p) => p >= gate);
  }
  return 10 * Math.log10(mean(passed));
}

async function truePeak(file: string, channel: number): Promise<number> {
  const out = await ffmpegLines(['-i', file, '-af', `pan=mono|c0=c${channel},ebur128=peak=true`, '-f', 'null', '-']);
  const m = /True peak:\s*\n\s*Peak:\s*(-?[\d.]+|-inf)/.exec(out);
  if (!m) throw new Error(`no true peak in ebur128's summary for ${file}`);
  return m[1] === '-inf' ? -Infinity : Number(m[1]);
}

/** Measures every channel of a file (its rate decides the 20 ms window). */
export async function meter(file: string, channels: number, rate: number): Promise<ChannelMeter[]> {
  const [powers, whole] = await Promise.all([
    windowPowers(file, channels, Math.round(rate * 0.02)),
    ffmpegLines([
      '-i',
      file,
      '-af',
      'astats=measure_perchannel=DC_offset+Peak_level:measure_overall=none',
      '-f',
      'null',
      '-',
    ]),
  ]);
  const stats = (name: string) =>
    [...whole.matchAll(new RegExp(`${name}:\\s*(-?[\\d.]+|-inf)`, 'g'))].map((m) =>
      m[1] === '-inf' ? -Infinity : Number(m[1]),
    );
  const dc = stats('DC offset');
  const peak = stats('Peak level dB');
  const result: ChannelMeter[] = [];
  for (let c = 0; c < channels; c++) {
    result.push({
      speechDbfs: gatedDb(powers[c]!),
      dcOffset: dc[c]!,
      peakDbfs: peak[c]!,
      truePeakDbfs: await truePeak(file, c),
    });
  }
  return result;
}
