/**
 * Waveform pictures drawn in Node from a WAV's samples, without a child
 * process (an ffmpeg start alone costs more CPU than reading a short call):
 * one PNG per channel, WAVEFORM_SIZE, the same blue as ffmpeg's showwavespic
 * on a transparent background and the same sqrt amplitude scale.
 *
 * Each column is a bar symmetric around the middle: its height covers the
 * loudest |sample| of the column (blue), with a darker inner bar for the
 * column's RMS. Digital silence draws nothing (a bar shorter than one pixel
 * rounds away), like showwavespic. Columns map to frames by index
 * (column = floor(frame × width / frames), frames from the WAV header, cut at
 * WAVEFORM_MAX_SECONDS); a recording shorter than the width holds each value
 * until the next column with samples. Memory is O(width × channels): the
 * samples are read 1 MB at a time (wav-samples.ts), the event loop running between reads.
 */
import { writeFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { int16View, streamWavBlocks, streamWavSamples, type SampleFormat } from './wav-samples.js';
import { decodeAlaw, decodeMulaw } from './g711.js';
import { encodePalettePng, type PaletteColor } from './png.js';
import { WAVEFORM_MAX_SECONDS, WAVEFORM_SIZE } from './waveform.js';
import {
  readWavInfo,
  WAVE_FORMAT_ALAW,
  WAVE_FORMAT_EXTENSIBLE,
  WAVE_FORMAT_MULAW,
  WAVE_FORMAT_PCM,
  type WavInfo,
} from './wav.js';

/** Palette indices of a waveform picture. */
const PEAK = 1;
const RMS = 2;
const WAVEFORM_PALETTE: readonly PaletteColor[] = [
  { rgb: 0x000000, alpha: 0 }, // background: transparent
  { rgb: 0x2563eb, alpha: 255 }, // peak: showwavespic's colors=0x2563eb
  { rgb: 0x1e40af, alpha: 255 }, // RMS: a darker blue
];

type Samples = Float32Array | Int16Array;

/** Per channel and column: the loudest |sample| and the sum of squares, over the column's frames. */
export class WaveformColumns {
  readonly peak: Float64Array;
  readonly sumSquares: Float64Array;
  /** Frames per column (the same for every channel). */
  readonly frames: Float64Array;
  private frame = 0;
  private column = 0;
  /** The first frame of the next column. */
  private nextColumnAt: number;

  constructor(
    readonly channels: number,
    readonly width: number,
    /** The frames the picture spans; pushes beyond them are ignored. */
    readonly totalFrames: number,
    /** The value of a full-scale sample in what push() gets: 1 for floats, 32768 for int16. */
    readonly fullScale = 1,
  ) {
    this.peak = new Float64Array(channels * width);
    this.sumSquares = new Float64Array(channels * width);
    this.frames = new Float64Array(width);
    this.nextColumnAt = this.columnStart(1);
  }

  /** First frame f with floor(f × width / totalFrames) >= column. */
  private columnStart(column: number): number {
    return column >= this.width ? Infinity : Math.ceil((column * this.totalFrames) / this.width);
  }

  /** Whether every frame the picture spans has been pushed. */
  get full(): boolean {
    return this.frame >= this.totalFrames;
  }

  /** Takes interleaved samples (full scale ±fullScale). */
  push(samples: Samples, frames: number): void {
    const count = Math.min(frames, this.totalFrames - this.frame);
    let i = 0;
    while (i < count) {
      const end = Math.min(count, this.nextColumnAt - this.frame + i);
      const at = this.column * this.channels;
      if (this.channels === 2) addStereo(samples, i, end, at, this.peak, this.sumSquares);
      else addChannels(samples, this.channels, i, end, at, this.peak, this.sumSquares);
      this.frames[this.column]! += end - i;
      this.frame += end - i;
      i = end;
      while (this.frame >= this.nextColumnAt && this.column < this.width - 1) {
        this.column++;
        this.nextColumnAt = this.columnStart(this.column + 1);
      }
    }
  }

  /** One picture's palette indices per channel (row by row), drawn at `height` pixels. */
  draw(height: number): Uint8Array[] {
    const { channels, width } = this;
    const pictures = Array.from({ length: channels }, () => new Uint8Array(width * height));
    let source = -1; // the column whose values a column without frames repeats
    for (let x = 0; x < width; x++) {
      if (this.frames[x]! > 0) source = x;
      if (source < 0) continue;
      for (let c = 0; c < channels; c++) {
        const at = source * channels + c;
        const rms = Math.sqrt(this.sumSquares[at]! / this.frames[source]!) / this.fullScale;
        fillBar(pictures[c]!, width, height, x, this.peak[at]! / this.fullScale, PEAK);
        fillBar(pictures[c]!, width, height, x, rms, RMS);
      }
    }
    return pictures;
  }
}

/**
 * Frames [from, to) of interleaved stereo into column slots at, at + 1. Two frames per turn with separate sums
 * (shorter dependency chains) and signed max/min rather than |x|: half the CPU of the plain loop.
 */
function addStereo(s: Samples, from: number, to: number, at: number, peak: Float64Array, sums: Float64Array): void {
  let hi0 = 0;
  let lo0 = 0;
  let hi1 = 0;
  let lo1 = 0;
  let q0 = 0;
  let q1 = 0;
  let p0 = 0;
  let p1 = 0;
  let i = from * 2;
  const end = to * 2;
  for (; i + 3 < end; i += 4) {
    const l = s[i]!;
    const r = s[i + 1]!;
    const l2 = s[i + 2]!;
    const r2 = s[i + 3]!;
    if (l > hi0) hi0 = l;
    else if (l < lo0) lo0 = l;
    if (r > hi1) hi1 = r;
    else if (r < lo1) lo1 = r;
    if (l2 > hi0) hi0 = l2;
    else if (l2 < lo0) lo0 = l2;
    if (r2 > hi1) hi1 = r2;
    else if (r2 < lo1) lo1 = r2;
    q0 += l * l;
    q1 += r * r;
    p0 += l2 * l2;
    p1 += r2 * r2;
  }
  if (i < end) {
    const l = s[i]!;
    const r = s[i + 1]!;
    hi0 = Math.max(hi0, l);
    lo0 = Math.min(lo0, l);
    hi1 = Math.max(hi1, r);
    lo1 = Math.min(lo1, r);
    q0 += l * l;
    q1 += r * r;
  }
  peak[at] = Math.max(peak[at]!, hi0, -lo0);
  peak[at + 1] = Math.max(peak[at + 1]!, hi1, -lo1);
  sums[at]! += q0 + p0;
  sums[at + 1]! += q1 + p1;
}

/** Frames [from, to) of any number of interleaved channels into column slots at .. at + channels - 1. */
function addChannels(
  s: Samples,
  channels: number,
  from: number,
  to: number,
  at: number,
  peak: Float64Array,
  sums: Float64Array,
): void {
  const end = to * channels;
  for (let c = 0; c < channels; c++) {
    let hi = 0;
    let lo = 0;
    let q = 0;
    for (let i = from * channels + c; i < end; i += channels) {
      const v = s[i]!;
      if (v > hi) hi = v;
      else if (v < lo) lo = v;
      q += v * v;
    }
    peak[at + c] = Math.max(peak[at + c]!, hi, -lo);
    sums[at + c]! += q;
  }
}

/** A bar of column x, symmetric around the middle, half its height sqrt(level) × height / 2. */
function fillBar(pixels: Uint8Array, width: number, height: number, x: number, level: number, color: number): void {
  const top = Math.round((height / 2) * (1 - Math.sqrt(Math.min(1, level))));
  for (let y = top; y < height - top; y++) pixels[y * width + x] = color;
}

export interface WavWaveformOptions {
  /** The drawing stops with an error after this long (the budget the ffmpeg run had). */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

/** Thrown out of the sample stream once the picture has all its frames (WAVEFORM_MAX_SECONDS). */
const ENOUGH = Symbol('enough samples');

/**
 * Draws `outputs.length` pictures (one per channel) of a WAV file. Returns false, having written nothing, when
 * the file is not a WAV this module reads (an MP3, an ADPCM WAV): the caller draws those with ffmpeg.
 */
export async function drawWavWaveforms(
  file: string,
  outputs: readonly string[],
  options: WavWaveformOptions,
): Promise<boolean> {
  // One controller for the caller's signal and the time budget (not AbortSignal.any, which leaks in Node 20 when
  // one of its signals lives long, like the gateway's shutdown signal), released when the drawing ends.
  const budget = new AbortController();
  const timer = setTimeout(
    () => budget.abort(new Error(`drawing the waveform took longer than ${options.timeoutMs} ms`)),
    options.timeoutMs,
  );
  const onAbort = (): void => budget.abort(abortReason(options.signal!));
  if (options.signal?.aborted) onAbort();
  else options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await drawWithin(file, outputs, budget.signal);
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}

async function drawWithin(file: string, outputs: readonly string[], signal: AbortSignal): Promise<boolean> {
  let columns: WaveformColumns | undefined;
  let readable = false;
  const start = (format: SampleFormat, fullScale: number): void => {
    readable = true;
    if (format.channels !== outputs.length) {
      throw new Error(`the WAV has ${format.channels} channels, ${outputs.length} pictures were asked for`);
    }
    const frames = Math.min(format.frames, Math.floor(WAVEFORM_MAX_SECONDS * format.sampleRate));
    columns = new WaveformColumns(format.channels, WAVEFORM_SIZE.width, frames, fullScale);
  };
  try {
    await streamSamples(
      file,
      start,
      (samples, frames) => {
        columns!.push(samples, frames);
        if (columns!.full) throw ENOUGH;
      },
      signal,
    );
  } catch (error) {
    if (error === ENOUGH) {
      // The frames the picture spans are read; the rest of the file is not needed.
    } else if (signal.aborted) {
      throw abortReason(signal);
    } else if (!readable && !isSystemError(error)) {
      // Refused before its first sample: not a format read here.
      return false;
    } else {
      throw error;
    }
  }
  if (signal.aborted) throw abortReason(signal);
  const pictures = columns!.draw(WAVEFORM_SIZE.height);
  await Promise.all(
    outputs.map((out, c) =>
      writeFile(out, encodePalettePng({ ...WAVEFORM_SIZE, palette: WAVEFORM_PALETTE, pixels: pictures[c]! })),
    ),
  );
  return true;
}

type Visit = (samples: Samples, frames: number) => void;
type Start = (format: SampleFormat, fullScale: number) => void;

const ALAW_TO_INT16 = Int16Array.from({ length: 256 }, (_, byte) => decodeAlaw(byte));
const MULAW_TO_INT16 = Int16Array.from({ length: 256 }, (_, byte) => decodeMulaw(byte));

/**
 * A WAV's samples, block by block. The gateway's own WAV outputs (PCM16, A-law, u-law) as int16 straight from
 * the file (no conversion to floats: a third of the general reader's CPU); anything else through
 * streamWavSamples (floats, full scale 1), which throws before `start` for a file it does not read.
 */
async function streamSamples(file: string, start: Start, visit: Visit, signal: AbortSignal): Promise<void> {
  const info = await readWavInfo(file);
  const tag = info && (info.formatTag === WAVE_FORMAT_EXTENSIBLE ? info.effectiveFormatTag : info.formatTag);
  if (info && info.blockAlign === (info.bitsPerSample / 8) * info.channels) {
    if (tag === WAVE_FORMAT_PCM && info.bitsPerSample === 16 && endianness() === 'LE') {
      return streamInt16(file, info, null, start, visit, signal);
    }
    if ((tag === WAVE_FORMAT_ALAW || tag === WAVE_FORMAT_MULAW) && info.bitsPerSample === 8) {
      return streamInt16(file, info, tag === WAVE_FORMAT_ALAW ? ALAW_TO_INT16 : MULAW_TO_INT16, start, visit, signal);
    }
  }
  await streamWavSamples(file, (format) => start(format, 1), visit, signal);
}

/** PCM16 viewed in place (a little-endian host), or 8-bit G.711 through `table`, block by block. */
async function streamInt16(
  file: string,
  info: WavInfo,
  table: Int16Array | null,
  start: Start,
  visit: Visit,
  signal: AbortSignal,
): Promise<void> {
  let samples = new Int16Array(0);
  const visitBlock = (block: Buffer, frames: number): void => {
    const n = frames * info.channels;
    if (!table) {
      visit(int16View(block, n), frames);
      return;
    }
    if (samples.length < n) samples = new Int16Array(n);
    for (let i = 0; i < n; i++) samples[i] = table[block[i]!]!;
    visit(samples, frames);
  };
  await streamWavBlocks(file, info, (format) => start(format, 32768), visitBlock, signal);
}

/** A failed open or read (ENOENT, EIO, ...), as opposed to a file whose format is not read here. */
function isSystemError(error: unknown): boolean {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string';
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error('drawing the waveform was aborted');
}
