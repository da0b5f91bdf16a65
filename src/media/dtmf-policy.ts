/**
 * DTMF=off|detect|mask (docs/dtmf.md): the settings of keypad-tone detection
 * and masking, as the configuration and a request give them.
 */
import type { DtmfMaskKind } from './dtmf-mask.js';

export const DTMF_MODES = ['off', 'detect', 'mask'] as const;
export type DtmfMode = (typeof DTMF_MODES)[number];

export interface DtmfPolicy {
  mode: DtmfMode;
  /** Masked before a tone's detected start and after its end (DTMF_GUARD_MS). */
  guardMs: number;
  /** What replaces a tone (DTMF_MASK). */
  mask: DtmfMaskKind;
}

export const DEFAULT_DTMF_POLICY: Readonly<DtmfPolicy> = { mode: 'off', guardMs: 20, mask: 'silence' };

/** The mode a call runs under: the request's `dtmf`, else DTMF. */
export function dtmfModeOf(requested: DtmfMode | undefined, policy: DtmfPolicy | undefined): DtmfMode {
  return requested ?? policy?.mode ?? 'off';
}
