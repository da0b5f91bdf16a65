/**
 * DTMF (keypad tone) detection, streaming and per channel, in pure TypeScript.
 *
 * Each channel is cut into blocks of 12.75 ms (102 samples at 8 kHz, as in the
 * PBX DSPs). Above 10 kHz the channel is first low-passed and decimated to
 * 8–11 kHz (a band-limited copy: DTMF lives below 1.7 kHz). In each block a
 * Goertzel filter per DTMF frequency measures the 4 row and the 4 column tones,
 * and the block is a hit for a key when (ITU-T Q.24 receiver thresholds, see
 * docs/dtmf.md):
 *
 * - the strongest row and column tone are each at least MIN_TONE_DBFS;
 * - twist (row over column) is within +NORMAL_TWIST_DB / −REVERSE_TWIST_DB;
 * - every other row (column) is RELATIVE_PEAK_DB below the strongest one;
 * - the two tones hold at least MIN_PURITY of the block's energy (SNR ≥ 15 dB
 *   leaves them 97 %);
 * - the block is steady (its quarters' energies within MIN_STEADINESS): the
 *   tone fills it, rather than starting or ending in it.
 *
 * Consecutive hits for the same key make a tone (one missed block is bridged:
 * Q.24's short interruptions). Where a tone may begin, go on or end, the window
 * straddling two blocks (the second half of one and the first half of the next)
 * is classified too, so the tone is followed in windows half a block apart. It
 * is accepted when at least MIN_WINDOWS of those windows hold the key (4: about
 * 32 ms of steady tone; a 40 ms tone always gives them, whatever its alignment
 * with the blocks, a 26 ms one never) and its frequencies, estimated from the
 * phase turn between the halves of each block and averaged over the tone, are
 * within MAX_DEVIATION of the nominal ones (±1.5 % accepted, ±3.5 % rejected).
 * Two missed blocks (a pause of 40 ms always gives them) end a tone.
 *
 * The key of a tone is kept inside the detector: the result gives when and how
 * loud, never which key (PCI). Tests can ask for the keys with `keepKeys` and `keyOf`.
 */

export const ROW_HZ = [697, 770, 852, 941] as const;
export const COL_HZ = [1209, 1336, 1477, 1633] as const;
/** Keys by row and column: what the signal means, used by tests only (never reported). */
export const KEYS = ['123A', '456B', '789C', '*0#D'] as const;

export interface DtmfThresholds {
  /** Each of the two tones at least this loud (dBFS, 0 dBFS = a full-scale sine), averaged over a block. */
  minToneDbfs: number;
  /** Row tone louder than the column tone by at most this (normal twist). */
  normalTwistDb: number;
  /** Column tone louder than the row tone by at most this (reverse twist). */
  reverseTwistDb: number;
  /** The other rows (columns) at least this far below the strongest one. */
  relativePeakDb: number;
  /** Share of the block's energy the two tones must hold. */
  minPurity: number;
  /**
   * The quietest quarter of a block holds at least this share of the loudest one's energy: a block the tone fills
   * (a tone is steady), not one it only starts or ends in.
   */
  minSteadiness: number;
  /** Relative frequency deviation accepted (mean over the tone). */
  maxDeviation: number;
  /**
   * Windows, half a block apart (the blocks and the windows straddling two of them), that must hold the key:
   * 4 windows span n + 3·n/2 samples (31.9 ms at 8 kHz). A 40 ms tone always gives 4 whatever its alignment
   * with the blocks; a sound that only happens to fill two aligned blocks does not (speech: a vowel's harmonics
   * passing through a row and a column frequency holds in the blocks but not in the window between them).
   */
  minWindows: number;
}

const DEFAULT_DTMF_THRESHOLDS: Readonly<DtmfThresholds> = {
  // −36 dBm0 is −39.1 dBFS in G.711; a block only half covered by the tone reads 3 dB lower.
  minToneDbfs: -45,
  // Q.24 asks for 8 and 4 dB; a 102-sample block lets each tone leak ±2 dB into the other's filter.
  normalTwistDb: 10,
  reverseTwistDb: 6,
  relativePeakDb: 8,
  minPurity: 0.7,
  // Quarters of 3.2 ms: two tones beat (at 268 Hz for 941 + 1209), and GSM's 20 ms frames pump the level.
  minSteadiness: 0.3,
  maxDeviation: 0.025,
  minWindows: 4,
};

/** One detected tone in one channel, in samples of the input's own rate. */
export interface DtmfTone {
  channel: number;
  startFrame: number;
  /** Exclusive. */
  endFrame: number;
  /** The two tones together, dBFS (a full-scale sine is 0 dBFS). */
  levelDbfs: number;
}

export interface DtmfDetectorOptions {
  thresholds?: Partial<DtmfThresholds>;
  /** Record each tone's key in `keys` (tests only: the gateway never reads or writes a key). */
  keepKeys?: boolean;
}

/** Block length at 8 kHz (12.75 ms). */
const BLOCK_AT_8K = 102;
/** Above this rate the channel is decimated first. */
const DECIMATE_ABOVE_HZ = 12_000;
const FREQS: readonly number[] = [...ROW_HZ, ...COL_HZ];
/** The highest DTMF frequency plus the ±3.5 % a sender may be off, rounded up. */
const PASS_EDGE_HZ = 1800;

/** A tone being followed in one channel (internal to the detector). */
export interface OpenTone {
  key: number;
  firstBlock: number;
  lastHit: number;
  hits: number;
  misses: number;
  /** Windows (blocks, and the windows straddling two blocks) that held the key. */
  windows: number;
  power: number;
  /** Σ X2·conj(X1) of the row (column) tone over the tone's blocks: its phase turn per half block. */
  rowRe: number;
  rowIm: number;
  colRe: number;
  colIm: number;
}

/** A windowed-sinc low-pass that keeps every `factor`-th output (the band-limited copy). */
class Decimator {
  private readonly taps: Float64Array;
  private readonly history: Float64Array;
  private pos = 0;
  private phase = 0;

  constructor(
    inputRate: number,
    private readonly factor: number,
  ) {
    // Pass band to 1.8 kHz, stop band from (output rate − 1.8 kHz): what folds back lands above the DTMF band.
    const outRate = inputRate / factor;
    const cutoff = outRate / 2;
    const transition = outRate - 2 * PASS_EDGE_HZ;
    // Hamming: a transition of 3.3 / taps of the rate, 53 dB down in the stop band.
    const n = Math.max(15, Math.ceil((3.3 * inputRate) / transition) | 1);
    this.taps = new Float64Array(n);
    const mid = (n - 1) / 2;
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const t = i - mid;
      const sinc =
        t === 0 ? 1 : Math.sin((2 * Math.PI * cutoff * t) / inputRate) / ((2 * Math.PI * cutoff * t) / inputRate);
      const hamming = 0.54 - 0.46 * Math.cos((2 * Math.PI * i) / (n - 1));
      this.taps[i] = sinc * hamming;
      sum += this.taps[i]!;
    }
    for (let i = 0; i < n; i++) this.taps[i]! /= sum;
    // Twice the length, written twice: a contiguous window without a modulo per tap.
    this.history = new Float64Array(2 * n);
  }

  /** Pushes one input sample; returns the filtered output when one is due, else NaN. */
  push(x: number): number {
    const n = this.taps.length;
    this.history[this.pos] = x;
    this.history[this.pos + n] = x;
    this.pos = this.pos + 1 === n ? 0 : this.pos + 1;
    if (++this.phase < this.factor) return NaN;
    this.phase = 0;
    let y = 0;
    const h = this.history;
    const taps = this.taps;
    // history[pos .. pos + n) is oldest → newest.
    for (let i = 0, j = this.pos; i < n; i++, j++) y += taps[i]! * h[j]!;
    return y;
  }
}

class ChannelDetector {
  private block: Float64Array;
  /** The block before `block`, and the key it held (−1: none). */
  private previous: Float64Array;
  private previousKey = -1;
  /** The window straddling `previous` and `block`. */
  private readonly straddle: Float64Array;
  private fill = 0;
  /** The energies of the quarters of `block` filled so far. */
  private readonly quarters = new Float64Array(4);
  private blockIndex = 0;
  private open: OpenTone | undefined;
  private readonly decimator: Decimator | undefined;

  constructor(
    private readonly detector: DtmfDetector,
    private readonly channel: number,
    inputRate: number,
    private readonly factor: number,
  ) {
    this.block = new Float64Array(detector.blockLength);
    this.previous = new Float64Array(detector.blockLength);
    this.straddle = new Float64Array(detector.blockLength);
    this.decimator = factor > 1 ? new Decimator(inputRate, factor) : undefined;
  }

  /**
   * Channel `c` of `frames` interleaved frames of `samples` (`stride` channels), each times `scale` (16-bit PCM:
   * 1/32768; floats: 1). Without a decimator the block fills in a tight loop straight from the interleaved buffer,
   * no call per sample, and the energies of its quarters are summed on the way (classify's first gates).
   */
  pushFrom(samples: Int16Array | Float32Array, c: number, stride: number, frames: number, scale: number): void {
    const end = c + frames * stride;
    if (this.decimator) {
      for (let i = c; i < end; i += stride) this.push(samples[i]! * scale);
      return;
    }
    const quarters = this.quarters;
    const len = this.block.length;
    const quarter = len >> 2;
    let i = c;
    while (i < end) {
      const block = this.block;
      let fill = this.fill;
      // Up to the end of the current quarter.
      const q = Math.min(3, (fill / quarter) | 0);
      const stop = Math.min(end, i + ((q < 3 ? (q + 1) * quarter : len) - fill) * stride);
      let energy = quarters[q]!;
      for (; i < stop; i += stride) {
        const x = samples[i]! * scale;
        block[fill++] = x;
        energy += x * x;
      }
      quarters[q] = energy;
      this.fill = fill;
      if (fill === len) {
        this.fill = 0;
        this.closeBlock(quarters);
        quarters.fill(0);
      }
    }
  }

  private push(x: number): void {
    const y = this.decimator!.push(x);
    if (y !== y) return; // NaN: no output due
    this.block[this.fill++] = y;
    if (this.fill === this.block.length) {
      this.fill = 0;
      this.closeBlock();
    }
  }

  /** `quarters`: the energies of the block's quarters, when summed while it filled. */
  private closeBlock(quarters?: Float64Array): void {
    const block = this.block;
    const key = quarters
      ? this.detector.classifyQuarters(block, true, quarters[0]!, quarters[1]!, quarters[2]!, quarters[3]!)
      : this.detector.classify(block);
    // The window between the previous block and this one, where a tone may begin, go on or end (rarely: the
    // extra filtering costs nothing on blocks without a key).
    const between = key >= 0 || this.previousKey >= 0 ? this.detector.classify(this.straddled(), false) : -1;
    // The two buffers swap: the next block fills the older one.
    this.block = this.previous;
    this.previous = block;
    this.previousKey = key;
    const index = this.blockIndex++;
    const open = this.open;
    if (open && between === open.key) open.windows++;
    if (key >= 0 && open && open.key === key) {
      open.hits++;
      open.lastHit = index;
      open.misses = 0;
      open.windows++;
      this.detector.accumulate(open, block);
      return;
    }
    if (key < 0) {
      if (open && ++open.misses > 1) this.finish();
      return;
    }
    if (open) this.finish();
    const started: OpenTone = {
      key,
      firstBlock: index,
      lastHit: index,
      hits: 1,
      misses: 0,
      windows: between === key ? 2 : 1,
      power: 0,
      rowRe: 0,
      rowIm: 0,
      colRe: 0,
      colIm: 0,
    };
    this.detector.accumulate(started, block);
    this.open = started;
  }

  /** The second half of the previous block and the first half of this one. */
  private straddled(): Float64Array {
    const n = this.block.length;
    const half = n >> 1;
    this.straddle.set(this.previous.subarray(half), 0);
    this.straddle.set(this.block.subarray(0, half), n - half);
    return this.straddle;
  }

  finish(): void {
    const open = this.open;
    this.open = undefined;
    if (!open) return;
    const span = this.detector.blockLength * this.factor;
    this.detector.accept(open, this.channel, open.firstBlock * span, (open.lastHit + 1) * span);
  }
}

/** Detects DTMF tones in interleaved audio, block by block; memory does not grow with the audio. */
export class DtmfDetector {
  /** Samples per block at the analysis rate. */
  readonly blockLength: number;
  /** The rate the Goertzel filters run at (the input's, or its band-limited copy's). */
  readonly analysisRate: number;
  private readonly t: DtmfThresholds;
  private readonly coeffs: Float64Array;
  private readonly cos: Float64Array[];
  private readonly sin: Float64Array[];
  private readonly channels: ChannelDetector[];
  private readonly found: DtmfTone[] = [];
  private readonly keys = new WeakMap<DtmfTone, string>();
  private readonly keepKeys: boolean;
  private readonly minBlockEnergy: number;
  private readonly minToneAmplitude: number;
  private readonly power = new Float64Array(8);
  /** The thresholds as linear factors (see classify). */
  private readonly minPower: number;
  private readonly relative: number;
  private readonly normalTwist: number;
  private readonly reverseTwistFloor: number;
  private readonly purityOfRow: number;
  private lastRow = 0;
  private lastCol = 0;
  private lastPower = 0;

  constructor(
    readonly channelCount: number,
    readonly sampleRate: number,
    options: DtmfDetectorOptions = {},
  ) {
    if (channelCount < 1) throw new RangeError('at least one channel');
    if (sampleRate < 8000) throw new RangeError('DTMF detection needs 8 kHz or more');
    this.t = { ...DEFAULT_DTMF_THRESHOLDS, ...options.thresholds };
    this.keepKeys = options.keepKeys ?? false;
    const factor = sampleRate > DECIMATE_ABOVE_HZ ? Math.floor(sampleRate / 8000) : 1;
    this.analysisRate = sampleRate / factor;
    this.blockLength = Math.round((BLOCK_AT_8K * this.analysisRate) / 8000);
    const n = this.blockLength;
    this.coeffs = Float64Array.from(FREQS, (f) => 2 * Math.cos((2 * Math.PI * f) / this.analysisRate));
    this.cos = FREQS.map((f) =>
      Float64Array.from({ length: n }, (_, i) => Math.cos((2 * Math.PI * f * i) / this.analysisRate)),
    );
    this.sin = FREQS.map((f) =>
      Float64Array.from({ length: n }, (_, i) => Math.sin((2 * Math.PI * f * i) / this.analysisRate)),
    );
    this.minToneAmplitude = 10 ** (this.t.minToneDbfs / 20);
    // Two tones at the minimum hold at least this much energy in a block.
    this.minBlockEnergy = this.minToneAmplitude ** 2 * n;
    this.minPower = ((this.minToneAmplitude * n) / 2) ** 2;
    this.relative = 10 ** (-this.t.relativePeakDb / 10);
    this.normalTwist = 10 ** (this.t.normalTwistDb / 10);
    this.reverseTwistFloor = 10 ** (-this.t.reverseTwistDb / 10);
    this.purityOfRow = ((1 + 10 ** (this.t.reverseTwistDb / 10)) * 2) / n;
    this.channels = Array.from({ length: channelCount }, (_, c) => new ChannelDetector(this, c, sampleRate, factor));
  }

  /** Interleaved floats (full scale ±1), whole frames. */
  push(samples: Float32Array, frames = samples.length / this.channelCount): void {
    const n = this.channelCount;
    for (let c = 0; c < n; c++) this.channels[c]!.pushFrom(samples, c, n, frames, 1);
  }

  /** Interleaved 16-bit PCM, whole frames. */
  pushInt16(samples: Int16Array, frames = samples.length / this.channelCount): void {
    const n = this.channelCount;
    for (let c = 0; c < n; c++) this.channels[c]!.pushFrom(samples, c, n, frames, INT16_SCALE);
  }

  /** A tone's key, when the detector was made with `keepKeys` (tests only). */
  keyOf(tone: DtmfTone): string | undefined {
    return this.keys.get(tone);
  }

  /** Ends every open tone; returns the tones of all channels by start. */
  finish(): DtmfTone[] {
    for (const ch of this.channels) ch.finish();
    return [...this.found].sort((a, b) => a.startFrame - b.startFrame || a.channel - b.channel);
  }

  /**
   * The key index (row × 4 + column) a block holds, or −1. With `record`, a hit's tones are kept for `accumulate`
   * (a window between two blocks only says whether it holds the key).
   */
  classify(block: Float64Array, record = true): number {
    const n = block.length;
    const quarter = n >> 2;
    let q0 = 0;
    let q1 = 0;
    let q2 = 0;
    let q3 = 0;
    for (let i = 0; i < quarter; i++) q0 += block[i]! * block[i]!;
    for (let i = quarter; i < 2 * quarter; i++) q1 += block[i]! * block[i]!;
    for (let i = 2 * quarter; i < 3 * quarter; i++) q2 += block[i]! * block[i]!;
    for (let i = 3 * quarter; i < n; i++) q3 += block[i]! * block[i]!;
    return this.classifyQuarters(block, record, q0, q1, q2, q3);
  }

  /** classify, given the energies of the block's quarters. */
  classifyQuarters(block: Float64Array, record: boolean, q0: number, q1: number, q2: number, q3: number): number {
    const n = block.length;
    const quarter = n >> 2;
    const energy = q0 + q1 + q2 + q3;
    if (energy < this.minBlockEnergy) return -1;
    // The last quarter may be a sample or two longer: compare the first three with each other and the last.
    const low = Math.min(q0, q1, q2, q3 * (quarter / (n - 3 * quarter)));
    const high = Math.max(q0, q1, q2, q3 * (quarter / (n - 3 * quarter)));
    if (low < this.t.minSteadiness * high) return -1;
    const power = this.power;
    // The four row filters first: most blocks that pass the gates above (a voice, a hum, noise) fail on the rows
    // alone, and the column filters are not run for them.
    this.goertzel(block, 0);
    let row = 0;
    for (let k = 1; k < 4; k++) if (power[k]! > power[row]!) row = k;
    const pr = power[row]!;
    // A sine of amplitude A at the filter's frequency gives |X|² = (A·n/2)².
    const minPower = this.minPower;
    if (pr < minPower) return -1;
    const relative = this.relative;
    for (let k = 0; k < 4; k++) if (k !== row && power[k]! > pr * relative) return -1;
    // What the purity test below needs of the row tone alone: the column tone is at most reverseTwist above it, so
    // the two hold at most pr·(1 + reverseTwist)·2/n of the block's energy. (The margin keeps rounding from
    // rejecting here a block the full test would take.)
    if (pr * this.purityOfRow < this.t.minPurity * energy * (1 - 1e-9)) return -1;
    this.goertzel(block, 4);
    let col = 4;
    for (let k = 5; k < 8; k++) if (power[k]! > power[col]!) col = k;
    const pc = power[col]!;
    if (pc < minPower) return -1;
    const twist = pr / pc;
    if (twist > this.normalTwist || twist < this.reverseTwistFloor) return -1;
    for (let k = 4; k < 8; k++) if (k !== col && power[k]! > pc * relative) return -1;
    // Each tone's energy in the block: |X|² · 2 / n.
    const toneEnergy = ((pr + pc) * 2) / n;
    if (toneEnergy < this.t.minPurity * energy) return -1;
    if (!record) return row * 4 + (col - 4);
    this.lastRow = row;
    this.lastCol = col - 4;
    this.lastPower = toneEnergy / n;
    return row * 4 + (col - 4);
  }

  /** Four Goertzel filters (the rows from 0, the columns from 4) over the block, in one pass, into `power`. */
  private goertzel(block: Float64Array, g: number): void {
    const n = block.length;
    const c0 = this.coeffs[g]!;
    const c1 = this.coeffs[g + 1]!;
    const c2 = this.coeffs[g + 2]!;
    const c3 = this.coeffs[g + 3]!;
    let a1 = 0;
    let a2 = 0;
    let b1 = 0;
    let b2 = 0;
    let d1 = 0;
    let d2 = 0;
    let e1 = 0;
    let e2 = 0;
    // x − s[−2] first: it does not wait for the previous step, which leaves one multiply and one add in the chain
    // from one sample to the next (the loop is bound by that chain's latency).
    for (let i = 0; i < n; i++) {
      const x = block[i]!;
      const a0 = x - a2 + c0 * a1;
      a2 = a1;
      a1 = a0;
      const b0 = x - b2 + c1 * b1;
      b2 = b1;
      b1 = b0;
      const d0 = x - d2 + c2 * d1;
      d2 = d1;
      d1 = d0;
      const e0 = x - e2 + c3 * e1;
      e2 = e1;
      e1 = e0;
    }
    const power = this.power;
    power[g] = a1 * a1 + a2 * a2 - c0 * a1 * a2;
    power[g + 1] = b1 * b1 + b2 * b2 - c1 * b1 * b2;
    power[g + 2] = d1 * d1 + d2 * d2 - c2 * d1 * d2;
    power[g + 3] = e1 * e1 + e2 * e2 - c3 * e1 * e2;
  }

  /** Adds the block just classified to a tone: its power and the frequency deviation of its two tones. */
  accumulate(open: OpenTone, block: Float64Array): void {
    open.power += this.lastPower;
    this.turn(block, this.lastRow);
    open.rowRe += this.re;
    open.rowIm += this.im;
    this.turn(block, 4 + this.lastCol);
    open.colRe += this.re;
    open.colIm += this.im;
  }

  private re = 0;
  private im = 0;

  /**
   * X2·conj(X1) of filter k's frequency over the block's two halves (into re, im): its angle is the tone's
   * phase turn over half a block, 2π·Δf·half/rate. Summed over a tone's blocks, each block weighs by its
   * tone's energy: a block the tone only half fills counts little.
   */
  private turn(block: Float64Array, k: number): void {
    const n = block.length;
    const half = n >> 1;
    const cos = this.cos[k]!;
    const sin = this.sin[k]!;
    let re1 = 0;
    let im1 = 0;
    let re2 = 0;
    let im2 = 0;
    for (let i = 0; i < half; i++) {
      re1 += block[i]! * cos[i]!;
      im1 -= block[i]! * sin[i]!;
    }
    for (let i = half; i < 2 * half; i++) {
      re2 += block[i]! * cos[i]!;
      im2 -= block[i]! * sin[i]!;
    }
    this.re = re2 * re1 + im2 * im1;
    this.im = im2 * re1 - re2 * im1;
  }

  /** Relative frequency deviation of filter k's tone from its summed turn. */
  private deviation(re: number, im: number, k: number): number {
    const half = this.blockLength >> 1;
    const deltaHz = (Math.atan2(im, re) * this.analysisRate) / (2 * Math.PI * half);
    return deltaHz / FREQS[k]!;
  }

  accept(open: OpenTone, channel: number, startFrame: number, endFrame: number): void {
    if (open.windows < this.t.minWindows) return;
    const row = open.key >> 2;
    const rowDev = this.deviation(open.rowRe, open.rowIm, row);
    const colDev = this.deviation(open.colRe, open.colIm, 4 + (open.key & 3));
    if (Math.abs(rowDev) > this.t.maxDeviation || Math.abs(colDev) > this.t.maxDeviation) return;
    const meanPower = open.power / open.hits;
    // Mean square → dBFS of a sine (a full-scale sine has mean square ½).
    const levelDbfs = Math.round(10 * Math.log10(2 * meanPower) * 10) / 10;
    const tone = { channel, startFrame, endFrame, levelDbfs };
    this.found.push(tone);
    if (this.keepKeys) this.keys.set(tone, KEYS[open.key >> 2]![open.key & 3]!);
  }
}

const INT16_SCALE = 1 / 32768;
