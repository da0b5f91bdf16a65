/**
 * LevelMeter: per-channel sums, peaks and a histogram of 20 ms window levels,
 * and the cross-channel sum, accumulated in one streaming pass with memory
 * that does not grow with the file. The stereo analysis (analysis.ts,
 * analysis-follow.ts) reads its verdicts from these raw levels.
 */

/** The window length of the speech-activity measure. */
export const DEFAULT_WINDOW_MS = 20;

/** Window levels are counted in 1 dB bins from −120 dBFS (bin 0, which also holds digital silence) to 0 dBFS. */
export const HISTOGRAM_FLOOR_DB = -120;
const HISTOGRAM_BINS = 121;

interface ChannelLevels {
  sum: number;
  sumSquares: number;
  peak: number;
  maxWindowMeanSquare: number;
  /** Windows per 1 dB level bin, bin i = [i − 120, i − 119) dBFS. */
  histogram: number[];
}

export interface RawLevels {
  sampleRate: number;
  frames: number;
  windows: number;
  windowMs: number;
  channels: ChannelLevels[];
  /** Σ x0·x1 over all frames (channels 0 and 1). */
  crossSum: number;
}

/** Accumulates levels from interleaved float samples (full scale ±1). */
export class LevelMeter {
  private readonly windowFrames: number;
  private readonly sum: Float64Array;
  private readonly sumSquares: Float64Array;
  private readonly peak: Float64Array;
  private readonly windowSquares: Float64Array;
  private readonly maxWindow: Float64Array;
  private readonly histograms: Uint32Array[];
  private crossSum = 0;
  private frames = 0;
  private inWindow = 0;
  private windows = 0;

  constructor(
    private readonly channelCount: number,
    private readonly sampleRate: number,
    private readonly windowMs = DEFAULT_WINDOW_MS,
  ) {
    if (channelCount < 1) throw new RangeError('at least one channel');
    this.windowFrames = Math.max(1, Math.round((sampleRate * windowMs) / 1000));
    this.sum = new Float64Array(channelCount);
    this.sumSquares = new Float64Array(channelCount);
    this.peak = new Float64Array(channelCount);
    this.windowSquares = new Float64Array(channelCount);
    this.maxWindow = new Float64Array(channelCount);
    this.histograms = Array.from({ length: channelCount }, () => new Uint32Array(HISTOGRAM_BINS));
  }

  /** `samples` holds whole interleaved frames. */
  push(samples: Float32Array, frameCount = samples.length / this.channelCount): void {
    if (this.channelCount === 2) {
      this.pushStereo(samples, frameCount, 1);
      return;
    }
    const n = this.channelCount;
    for (let f = 0; f < frameCount; f++) {
      const base = f * n;
      for (let c = 0; c < n; c++) {
        const x = samples[base + c]!;
        this.sum[c]! += x;
        const sq = x * x;
        this.sumSquares[c]! += sq;
        this.windowSquares[c]! += sq;
        // Math.abs, not a sign test: a branch on the sign mispredicts on every other sample of real audio.
        const a = Math.abs(x);
        if (a > this.peak[c]!) this.peak[c] = a;
      }
      if (n >= 2) this.crossSum += samples[base]! * samples[base + 1]!;
      this.frames++;
      if (++this.inWindow === this.windowFrames) this.closeWindow();
    }
  }

  /**
   * 16-bit PCM frames as they are in the file, without a float copy: k / 32768 is exact in a float, so every sum
   * is the one push() would make from the decoded floats.
   */
  pushInt16(samples: Int16Array, frameCount = samples.length / this.channelCount): void {
    if (this.channelCount === 2) {
      this.pushStereo(samples, frameCount, INT16_SCALE);
      return;
    }
    const floats = new Float32Array(frameCount * this.channelCount);
    for (let i = 0; i < floats.length; i++) floats[i] = samples[i]! * INT16_SCALE;
    this.push(floats, frameCount);
  }

  /**
   * The stereo case (every stereo output is analysed) with its running sums in locals: the same additions in the
   * same order as push()'s general loop, so the same results, without a typed-array store per sample.
   * `scale` turns a sample into full scale ±1 (1 for floats, exact for both).
   */
  private pushStereo(s: Float32Array | Int16Array, frameCount: number, scale: number): void {
    let sum0 = this.sum[0]!;
    let sum1 = this.sum[1]!;
    let sq0 = this.sumSquares[0]!;
    let sq1 = this.sumSquares[1]!;
    let win0 = this.windowSquares[0]!;
    let win1 = this.windowSquares[1]!;
    let peak0 = this.peak[0]!;
    let peak1 = this.peak[1]!;
    let cross = this.crossSum;
    let inWindow = this.inWindow;
    const windowFrames = this.windowFrames;
    for (let f = 0, i = 0; f < frameCount; f++, i += 2) {
      const x0 = s[i]! * scale;
      const x1 = s[i + 1]! * scale;
      sum0 += x0;
      sum1 += x1;
      const q0 = x0 * x0;
      const q1 = x1 * x1;
      sq0 += q0;
      sq1 += q1;
      win0 += q0;
      win1 += q1;
      const a0 = Math.abs(x0);
      if (a0 > peak0) peak0 = a0;
      const a1 = Math.abs(x1);
      if (a1 > peak1) peak1 = a1;
      cross += x0 * x1;
      if (++inWindow === windowFrames) {
        this.windowSquares[0] = win0;
        this.windowSquares[1] = win1;
        this.inWindow = inWindow;
        this.closeWindow();
        win0 = 0;
        win1 = 0;
        inWindow = 0;
      }
    }
    this.sum[0] = sum0;
    this.sum[1] = sum1;
    this.sumSquares[0] = sq0;
    this.sumSquares[1] = sq1;
    this.windowSquares[0] = win0;
    this.windowSquares[1] = win1;
    this.peak[0] = peak0;
    this.peak[1] = peak1;
    this.crossSum = cross;
    this.inWindow = inWindow;
    this.frames += frameCount;
  }

  private closeWindow(): void {
    for (let c = 0; c < this.channelCount; c++) {
      const meanSquare = this.windowSquares[c]! / this.inWindow;
      if (meanSquare > this.maxWindow[c]!) this.maxWindow[c] = meanSquare;
      this.histograms[c]![binOf(meanSquare)]!++;
      this.windowSquares[c] = 0;
    }
    this.windows++;
    this.inWindow = 0;
  }

  result(): RawLevels {
    if (this.inWindow > 0) this.closeWindow();
    return {
      sampleRate: this.sampleRate,
      frames: this.frames,
      windows: this.windows,
      windowMs: this.windowMs,
      crossSum: this.crossSum,
      channels: Array.from({ length: this.channelCount }, (_, c) => ({
        sum: this.sum[c]!,
        sumSquares: this.sumSquares[c]!,
        peak: this.peak[c]!,
        maxWindowMeanSquare: this.maxWindow[c]!,
        histogram: Array.from(this.histograms[c]!),
      })),
    };
  }
}

const INT16_SCALE = 1 / 32768;

function binOf(meanSquare: number): number {
  if (!(meanSquare > 0)) return 0;
  const db = 10 * Math.log10(meanSquare);
  return Math.max(0, Math.min(HISTOGRAM_BINS - 1, Math.floor(db - HISTOGRAM_FLOOR_DB)));
}
