/**
 * No keypad tone where there is none: at least 30 minutes of espeak-ng speech (16 voices and languages, pitches
 * from low to high) and Debian's Asterisk music on hold and prompts (asterisk-moh-opsound-wav,
 * asterisk-core-sounds-en-wav; music with tonal content is the classic false trigger). The detector runs directly
 * on the audio at 8 kHz (no HTTP, no file: espeak-ng's speech goes through ffmpeg's resampler straight into the
 * detector, two voices at a time). The counts are printed for docs/dtmf.md.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { DtmfDetector, type DtmfTone } from '../../src/media/dtmf-detect.js';
import { detectInWav } from '../../src/media/dtmf-wav.js';
import { missingTools } from '../helpers/dtmf-call.js';

const VOICES = [
  'en',
  'en-us+f3',
  'de+m3',
  'fr+f2',
  'es',
  'it+f4',
  'pt',
  'ru',
  'pl+f1',
  'nl',
  'sv+m7',
  'hi',
  'cmn',
  'tr+f5',
  'vi',
  'el+f3',
];
/** Where Debian's packages put them (the prompts' folder is named after the voice, en_US_f_Allison). */
const ASTERISK = ['/usr/share/asterisk/moh', '/usr/share/asterisk/sounds'];

let missing: string[] = [];
let noSounds: string[] = [];
beforeAll(async () => {
  missing = await missingTools();
  noSounds = ASTERISK.filter((d) => !existsSync(d));
  const all = [...missing, ...(noSounds.length > 0 ? ['asterisk-moh-opsound-wav', 'asterisk-core-sounds-en-wav'] : [])];
  if (all.length > 0 && process.env.CI) throw new Error(`CI must install ${all.join(', ')} (see .ci/run)`);
});

async function wavsUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile() && e.name.endsWith('.wav')).map((e) => path.join(e.parentPath, e.name));
}

/** Exits with 0, or rejects saying which tool failed. */
function exited(child: ChildProcess, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${name} exited with ${code}`))));
  });
}

/**
 * One voice reading `text`, resampled to 8 kHz by ffmpeg and piped into a detector: the tones found (when, how
 * long, how loud; never a key) and the seconds of speech.
 */
async function detectInSpeech(text: string, voice: string): Promise<{ seconds: number; tones: DtmfTone[] }> {
  const espeak = spawn('espeak-ng', ['-v', voice, '-s', '190', '--stdout', text], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const args = ['-nostdin', '-hide_banner', '-v', 'error', '-f', 'wav', '-i', 'pipe:0'];
  const ffmpeg = spawn('ffmpeg', [...args, '-ar', '8000', '-ac', '1', '-f', 's16le', 'pipe:1'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const done = Promise.all([exited(espeak, 'espeak-ng'), exited(ffmpeg, 'ffmpeg')]);
  espeak.stdout!.pipe(ffmpeg.stdin!);
  const detector = new DtmfDetector(1, 8000);
  let samples = 0;
  let odd: Buffer | undefined;
  for await (const chunk of ffmpeg.stdout! as AsyncIterable<Buffer>) {
    const bytes = odd ? Buffer.concat([odd, chunk]) : chunk;
    const whole = bytes.length & ~1;
    odd = whole < bytes.length ? bytes.subarray(whole) : undefined;
    // A copy: a chunk's offset need not be even, and Int16Array wants an aligned view.
    const pcm = new Int16Array(whole / 2);
    new Uint8Array(pcm.buffer).set(bytes.subarray(0, whole));
    detector.pushInt16(pcm);
    samples += pcm.length;
  }
  await done;
  return { seconds: samples / 8000, tones: detector.finish() };
}

describe('DTMF false positives', () => {
  it('none in 30 minutes of speech in 16 voices and languages', { timeout: 600_000 }, async () => {
    if (missing.length > 0) return console.warn(`skipped: ${missing.join(', ')} not installed`);
    // Prose without the README's code blocks and markup: about 2.5 minutes per voice.
    // A fixed corpus (the README as it was when the detector was tuned), so the check does not drift with the docs.
    const readme = await readFile(new URL('../fixtures/speech-corpus.md', import.meta.url), 'utf8');
    const text = readme.replace(/```[\s\S]*?```/g, ' ').replace(/[`|#*_<>[\]()-]/g, ' ');
    const started = Date.now();
    let seconds = 0;
    const found: string[] = [];
    // Two voices at a time (the machine has two cores, and CI runs other files beside this one).
    const queue = [...VOICES.entries()];
    const worker = async (): Promise<void> => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        const [i, voice] = next;
        const heard = await detectInSpeech(text.slice(i * 2500, (i + 1) * 2500), voice);
        seconds += heard.seconds;
        for (const t of heard.tones) {
          const at = (t.startFrame / 8000).toFixed(2);
          found.push(`${voice} at ${at} s, ${(t.endFrame - t.startFrame) / 8} ms, ${t.levelDbfs} dBFS`);
        }
      }
    };
    await Promise.all([worker(), worker()]);
    console.log(
      `[dtmf false positives] speech: ${found.length} tone(s) in ${(seconds / 60).toFixed(1)} min, ` +
        `${VOICES.length} voices (${((Date.now() - started) / 1000).toFixed(1)} s)${found.map((f) => `\n  ${f}`).join('')}`,
    );
    expect(seconds).toBeGreaterThanOrEqual(30 * 60);
    expect(found).toEqual([]);
  });

  it("none in Asterisk's music on hold and English prompts", { timeout: 300_000 }, async () => {
    if (noSounds.length > 0) return console.warn(`skipped: ${noSounds.join(', ')} missing (Debian's Asterisk sounds)`);
    let seconds = 0;
    let files = 0;
    const found: string[] = [];
    for (const dir of ASTERISK) {
      for (const file of await wavsUnder(dir)) {
        const scan = await detectInWav(file);
        seconds += scan.frames / scan.sampleRate;
        files++;
        if (scan.tones.length > 0) found.push(`${path.basename(file)}: ${scan.tones.length}`);
      }
    }
    console.log(
      `[dtmf false positives] music and prompts: ${files} files, ${(seconds / 60).toFixed(1)} min, ` +
        `tones in: ${found.join(', ') || 'none'}`,
    );
    expect(files).toBeGreaterThan(100);
    expect(found).toEqual([]);
  });
});
