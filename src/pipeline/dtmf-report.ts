/**
 * What DTMF detection and masking report (pipeline/dtmf.ts): per channel, how
 * many tones, and for each its start, end and level. Never the key: the
 * digits a caller typed are exactly what must not be stored (PCI DSS).
 */
import type { DtmfTone } from '../media/dtmf-detect.js';
import type { DtmfMaskKind } from '../media/dtmf-mask.js';
import type { DtmfMode } from '../media/dtmf-policy.js';

interface DtmfToneReport {
  startMs: number;
  endMs: number;
  levelDbfs: number;
}

export interface DtmfChannelReport {
  channel: 'left' | 'right' | 'mono';
  party?: 'local' | 'remote' | undefined;
  tones: number;
  spans: DtmfToneReport[];
}

export interface DtmfReport {
  mode: DtmfMode;
  /** DTMF, or `dtmf` in the request. */
  decidedBy: string;
  /** detected: found and left (DTMF=detect); masked: replaced; none: nothing found. */
  action: 'none' | 'detected' | 'masked';
  tones: number;
  channels: DtmfChannelReport[];
  /** Masking only: the guard on each side of a tone and what replaced it. */
  guardMs?: number | undefined;
  mask?: DtmfMaskKind | undefined;
  /** Masking a client's compliant file wrote it again in its own format (A-law, u-law, MP3: one generation more). */
  reencoded?: string | undefined;
  /** The tones were found while the output was written (no pass of their own). */
  followed: boolean;
  warnings: string[];
  detectMs: number;
  maskMs: number;
  /** True when the gateway wrote a new output: a later re-encode must start from it. */
  rendered: boolean;
}

const CHANNELS = [
  { channel: 'left', party: 'local' },
  { channel: 'right', party: 'remote' },
] as const;

/** The per-channel report of the tones (ms rounded; the keys were never here). */
export function channelReports(tones: readonly DtmfTone[], channels: number, sampleRate: number): DtmfChannelReport[] {
  const ms = (frame: number): number => Math.round((frame * 1000) / sampleRate);
  return Array.from({ length: channels }, (_, c) => {
    const mine = tones.filter((t) => t.channel === c);
    const name = channels === 1 ? { channel: 'mono' as const } : { ...CHANNELS[c]! };
    return {
      ...name,
      tones: mine.length,
      spans: mine.map((t) => ({ startMs: ms(t.startFrame), endMs: ms(t.endFrame), levelDbfs: t.levelDbfs })),
    };
  });
}
