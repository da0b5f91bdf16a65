/**
 * Calls with keypad tones for the DTMF tests: espeak-ng speech on both
 * channels, and on the customer's (right) channel a key sequence made by
 * ffmpeg (aevalsrc: exact frequencies, levels, twist, deviation), optionally
 * with white noise; encoded in a telephony codec. multimon-ng, an independent
 * decoder, says which keys a channel holds.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { decodeFloat } from './audio.js';
import { frequenciesOf, noise, type ToneSpec } from './dtmf.js';
import { ff, say } from './speech.js';

const run = promisify(execFile);
const RATE = 8000;

/** What each Debian tool is, for a skip message outside CI (CI must have them: .ci/run installs them). */
export const DTMF_TOOLS = ['multimon-ng', 'espeak-ng', 'sox', 'ffmpeg'] as const;

export async function missingTools(): Promise<string[]> {
  const missing: string[] = [];
  for (const tool of DTMF_TOOLS) {
    try {
      await run('sh', ['-c', `command -v ${tool}`]);
    } catch {
      missing.push(tool);
    }
  }
  return missing;
}

/** The keys of `tones` as an ffmpeg aevalsrc expression of `seconds` at 8 kHz, starting at `startS`. */
function toneExpression(tones: readonly ToneSpec[], startS: number, gapMs: number): { expr: string; end: number } {
  let at = startS;
  const terms: string[] = [];
  for (const t of tones) {
    const [fr, fc] = frequenciesOf(t.key);
    const dev = 1 + (t.deviation ?? 0);
    const ar = 10 ** ((t.rowDbfs ?? -10) / 20);
    const ac = ar * 10 ** ((t.twistDb ?? 0) / 20);
    const end = at + t.ms / 1000;
    terms.push(
      `between(t,${at.toFixed(4)},${(end - 1 / RATE).toFixed(4)})*` +
        `(${ar.toFixed(6)}*sin(2*PI*${(fr * dev).toFixed(3)}*t)+${ac.toFixed(6)}*sin(2*PI*${(fc * dev).toFixed(3)}*t))`,
    );
    at = end + gapMs / 1000;
  }
  return { expr: terms.join('+'), end: at };
}

export interface CallSpec {
  name: string;
  tones: readonly ToneSpec[];
  gapMs: number;
  /** White noise this many dB below the tones (both tones' power), around this segment's keys. */
  snrDb?: number | undefined;
}

export interface DtmfCall {
  /** Stereo PCM16 8 kHz WAV: agent left, customer (speech + keys) right. */
  wav: string;
  frames: number;
  /** Where each segment's keys are on the right channel (seconds). */
  segments: Array<{ name: string; from: number; to: number }>;
}

/** Speech for both parties, made once per folder. */
export async function speechFor(dir: string): Promise<{ agent: Float32Array; customer: Float32Array }> {
  const agent = path.join(dir, 'agent.wav');
  const customer = path.join(dir, 'customer.wav');
  await say(
    'Thank you. Please type your card number, followed by the hash key. Thank you, that was accepted.',
    'en',
    agent,
  );
  await say('Yes, just a moment, I have the card here. There you go.', 'en-us+f3', customer);
  const [a] = await decodeFloat(await at8k(agent), 1);
  const [c] = await decodeFloat(await at8k(customer), 1);
  return { agent: a!, customer: c! };
}

async function at8k(file: string): Promise<string> {
  const out = file.replace(/\.wav$/, '.8k.wav');
  await ff('-i', file, '-ar', String(RATE), '-c:a', 'pcm_s16le', out);
  return out;
}

/** Speech between the key segments on the customer's side (seconds). */
const SPEECH_GAP_S = 1.2;

/**
 * A stereo call: the customer talks, types a segment's keys, talks again, and so on; the agent talks throughout.
 * The customer's speech stops 0.3 s before the keys and resumes 0.3 s after them.
 */
export async function makeCall(
  dir: string,
  name: string,
  segments: readonly CallSpec[],
  speech: { agent: Float32Array; customer: Float32Array },
): Promise<DtmfCall> {
  const placed: DtmfCall['segments'] = [];
  let at = SPEECH_GAP_S;
  // One ffmpeg run per segment: aevalsrc's expression parser gives up on a few hundred terms.
  const segmentTones: Float32Array[] = [];
  for (const [k, seg] of segments.entries()) {
    const { expr, end } = toneExpression(seg.tones, 0, seg.gapMs);
    const out = path.join(dir, `${name}.tones-${k}.wav`);
    await ff('-f', 'lavfi', '-i', `aevalsrc='${expr}':s=${RATE}:d=${end.toFixed(3)}`, '-c:a', 'pcm_f32le', out);
    const [samples] = await decodeFloat(out, 1);
    segmentTones.push(samples!);
    placed.push({ name: seg.name, from: at, to: at + end });
    at += end + SPEECH_GAP_S;
  }
  const tones = new Float32Array(Math.round(at * RATE));
  for (const [k, p] of placed.entries()) tones.set(segmentTones[k]!, Math.round(p.from * RATE));
  const frames = tones.length;
  const left = new Float32Array(frames);
  const right = new Float32Array(frames);
  for (let i = 0; i < frames; i++) left[i] = 0.5 * speech.agent[i % speech.agent.length]!;
  const quiet = placed.map((p) => [Math.round((p.from - 0.3) * RATE), Math.round((p.to + 0.3) * RATE)] as const);
  let said = 0;
  for (let i = 0; i < frames; i++) {
    if (quiet.some(([a, b]) => i >= a && i < b)) continue;
    right[i] = 0.5 * speech.customer[said++ % speech.customer.length]!;
  }
  for (let i = 0; i < frames; i++) right[i]! += tones[i]!;
  for (const [k, seg] of segments.entries()) {
    if (seg.snrDb === undefined) continue;
    const t = seg.tones[0]!;
    const ar = 10 ** ((t.rowDbfs ?? -10) / 20);
    const ac = ar * 10 ** ((t.twistDb ?? 0) / 20);
    const scale = Math.sqrt(((ar * ar + ac * ac) / 2 / 10 ** (seg.snrDb / 10)) * 3);
    const rnd = noise(7 + k);
    const [a, b] = quiet[k]!;
    for (let i = a; i < b; i++) right[i]! += scale * rnd();
  }
  const wav = path.join(dir, `${name}.wav`);
  await writeFile(wav, pcm16Stereo(left, right, RATE));
  return { wav, frames, segments: placed };
}

/** A canonical 16-bit stereo WAV. */
export function pcm16Stereo(left: Float32Array, right: Float32Array, rate: number): Buffer {
  const frames = left.length;
  const buf = Buffer.alloc(44 + frames * 4);
  buf.write('RIFF', 0);
  buf.writeUInt32LE(36 + frames * 4, 4);
  buf.write('WAVEfmt ', 8);
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20);
  buf.writeUInt16LE(2, 22);
  buf.writeUInt32LE(rate, 24);
  buf.writeUInt32LE(rate * 4, 28);
  buf.writeUInt16LE(4, 32);
  buf.writeUInt16LE(16, 34);
  buf.write('data', 36);
  buf.writeUInt32LE(frames * 4, 40);
  const q = (x: number) => Math.max(-32768, Math.min(32767, Math.round(x * 32768)));
  for (let i = 0; i < frames; i++) {
    buf.writeInt16LE(q(left[i]!), 44 + i * 4);
    buf.writeInt16LE(q(right[i]!), 46 + i * 4);
  }
  return buf;
}

/** The telephony codecs the tests put a call through, as ffmpeg arguments and a file extension. */
export const CODECS = {
  pcm: { ext: 'wav', args: ['-c:a', 'pcm_s16le'] },
  alaw: { ext: 'wav', args: ['-c:a', 'pcm_alaw'] },
  ulaw: { ext: 'wav', args: ['-c:a', 'pcm_mulaw'] },
  gsm: { ext: 'wav', args: ['-c:a', 'gsm_ms'] },
  // At 24 kbit/s Opus codes the stereo jointly and a key leaks into the other channel about 26 dB down.
  opus: { ext: 'opus', args: ['-c:a', 'libopus', '-b:a', '32k'] },
  mp3: { ext: 'mp3', args: ['-c:a', 'libmp3lame', '-b:a', '24k'] },
} as const;
export type CodecName = keyof typeof CODECS;

/** The call through a codec (GSM is mono by nature: it is encoded per channel and the legs put side by side). */
export async function encodeAs(call: string, codec: CodecName): Promise<string> {
  const { ext, args } = CODECS[codec];
  const out = call.replace(/\.wav$/, `.${codec}.${ext}`);
  if (codec === 'gsm') {
    // GSM in WAV is mono: each channel through the codec, then both back into one PCM stereo file.
    const legs = [0, 1].map((c) => call.replace(/\.wav$/, `.gsm-${c}.wav`));
    for (const [c, leg] of legs.entries()) await ff('-i', call, '-af', `pan=mono|c0=c${c}`, '-c:a', 'gsm_ms', leg);
    const back = call.replace(/\.wav$/, '.gsm.wav');
    await ff(
      '-i',
      legs[0]!,
      '-i',
      legs[1]!,
      '-filter_complex',
      '[0][1]amerge=inputs=2',
      '-ar',
      '8000',
      '-c:a',
      'pcm_s16le',
      back,
    );
    return back;
  }
  await ff('-i', call, '-ar', '8000', ...args, out);
  return out;
}

/** The keys multimon-ng hears on one channel (0 left, 1 right) of any file ffmpeg reads. */
export async function multimonKeys(file: string, channel: number): Promise<string> {
  const raw = `${file}.ch${channel}.raw`;
  await ff('-i', file, '-af', `pan=mono|c0=c${channel}`, '-ar', '22050', '-f', 's16le', '-c:a', 'pcm_s16le', raw);
  const { stdout } = await run('multimon-ng', ['-q', '-c', '-a', 'DTMF', '-t', 'raw', raw]);
  return stdout
    .split('\n')
    .map((line) => /^DTMF: (.)/.exec(line)?.[1])
    .filter((k): k is string => k !== undefined)
    .join('');
}

/** The keys multimon-ng hears on one channel within each span (seconds, widened by 0.2 s each side). */
export async function multimonKeysIn(
  file: string,
  channel: number,
  spans: ReadonlyArray<{ from: number; to: number }>,
): Promise<string[]> {
  const MM_RATE = 22050;
  const raw = `${file}.ch${channel}.raw`;
  await ff(
    '-i',
    file,
    '-af',
    `pan=mono|c0=c${channel}`,
    '-ar',
    String(MM_RATE),
    '-f',
    's16le',
    '-c:a',
    'pcm_s16le',
    raw,
  );
  const all = await readFile(raw);
  const keys: string[] = [];
  for (const [i, span] of spans.entries()) {
    const from = Math.max(0, Math.round((span.from - 0.2) * MM_RATE)) * 2;
    const to = Math.min(all.length, Math.round((span.to + 0.2) * MM_RATE) * 2);
    const part = `${raw}.${i}`;
    await writeFile(part, all.subarray(from, to));
    const { stdout } = await run('multimon-ng', ['-q', '-c', '-a', 'DTMF', '-t', 'raw', part]);
    keys.push(
      stdout
        .split('\n')
        .map((line) => /^DTMF: (.)/.exec(line)?.[1])
        .filter((k): k is string => k !== undefined)
        .join(''),
    );
  }
  return keys;
}
