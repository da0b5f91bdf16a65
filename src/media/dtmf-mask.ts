/**
 * Masking of detected DTMF tones, pure: which samples of which channel are
 * replaced (the tone plus a guard on each side, overlapping spans merged), and
 * the replacement itself. Within a span the original fades out over a 5 ms
 * raised-cosine edge, stays out, and fades back in: no step is left for a
 * decoder (or an ear) to find. `silence` replaces it by nothing, `tone` by a
 * 1 kHz tone at −30 dBFS faded in and out the same way, so that a listener
 * hears that something was removed. Only the tone's own channel is touched.
 */
import type { DtmfTone } from './dtmf-detect.js';

export const DTMF_MASKS = ['silence', 'tone'] as const;
export type DtmfMaskKind = (typeof DTMF_MASKS)[number];

const MASK_EDGE_MS = 5;
const MASK_TONE_HZ = 1000;
export const MASK_TONE_DBFS = -30;

/** Frames [startFrame, endFrame) of one channel to replace; the edges fade within it. */
export interface MaskSpan {
  channel: number;
  startFrame: number;
  endFrame: number;
}

/** The spans to mask: each tone widened by `guardMs` on both sides, clamped to the audio, merged per channel. */
export function maskSpans(tones: readonly DtmfTone[], sampleRate: number, frames: number, guardMs: number): MaskSpan[] {
  const guard = Math.round((guardMs * sampleRate) / 1000);
  const byChannel = new Map<number, MaskSpan[]>();
  const sorted = [...tones].sort((a, b) => a.channel - b.channel || a.startFrame - b.startFrame);
  for (const t of sorted) {
    const startFrame = Math.max(0, t.startFrame - guard);
    const endFrame = Math.min(frames, t.endFrame + guard);
    if (endFrame <= startFrame) continue;
    const list = byChannel.get(t.channel) ?? [];
    const last = list[list.length - 1];
    if (last && startFrame <= last.endFrame) last.endFrame = Math.max(last.endFrame, endFrame);
    else list.push({ channel: t.channel, startFrame, endFrame });
    byChannel.set(t.channel, list);
  }
  return [...byChannel.values()].flat().sort((a, b) => a.startFrame - b.startFrame || a.channel - b.channel);
}

/** How much of the original is kept at `frame` of a span: 1 outside, 0 inside, a raised cosine on the edges. */
export function keptShare(span: MaskSpan, frame: number, edgeFrames: number): number {
  if (frame < span.startFrame || frame >= span.endFrame) return 1;
  const edge = Math.min(edgeFrames, Math.floor((span.endFrame - span.startFrame) / 2));
  if (edge <= 0) return 0;
  const fromStart = frame - span.startFrame;
  const toEnd = span.endFrame - 1 - frame;
  const into = Math.min(fromStart, toEnd);
  if (into >= edge) return 0;
  return 0.5 * (1 + Math.cos((Math.PI * (into + 0.5)) / edge));
}

/**
 * Masks one channel's samples in place: `samples[i]` is frame `firstFrame + i` of `span.channel` (full scale ±1).
 * Frames outside the span are left exactly as they are.
 */
export function maskSamples(
  samples: Float64Array,
  firstFrame: number,
  span: MaskSpan,
  sampleRate: number,
  kind: DtmfMaskKind,
): void {
  const edgeFrames = Math.round((MASK_EDGE_MS * sampleRate) / 1000);
  const amplitude = kind === 'tone' ? 10 ** (MASK_TONE_DBFS / 20) : 0;
  const from = Math.max(span.startFrame, firstFrame);
  const to = Math.min(span.endFrame, firstFrame + samples.length);
  for (let frame = from; frame < to; frame++) {
    const kept = keptShare(span, frame, edgeFrames);
    const i = frame - firstFrame;
    const fill = amplitude * Math.sin((2 * Math.PI * MASK_TONE_HZ * (frame - span.startFrame)) / sampleRate);
    samples[i] = samples[i]! * kept + (1 - kept) * fill;
  }
}
