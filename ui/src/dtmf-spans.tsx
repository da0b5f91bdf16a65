/**
 * The spans DTMF masking replaced (issue 22), drawn over a channel's waveform: one translucent band per span, from
 * the guard before the tone to the guard after it. Never the keys: the report holds none.
 */
import type { DtmfReport } from './types';

/** The masked spans of one channel as fractions of the recording, or none when nothing was masked there. */
export function maskedSpans(dtmf: DtmfReport | undefined, channel: number, totalSeconds: number | undefined) {
  if (!dtmf || dtmf.action !== 'masked' || !totalSeconds) return [];
  const guard = dtmf.guardMs ?? 0;
  const totalMs = totalSeconds * 1000;
  return (dtmf.channels[channel]?.spans ?? []).map((s) => ({
    from: Math.max(0, (s.startMs - guard) / totalMs),
    to: Math.min(1, (s.endMs + guard) / totalMs),
    title: `DTMF masked ${((s.startMs - guard) / 1000).toFixed(2)}–${((s.endMs + guard) / 1000).toFixed(2)} s`,
  }));
}

export function DtmfSpans({ spans }: { spans: ReturnType<typeof maskedSpans> }) {
  return (
    <>
      {spans.map((s) => (
        <span
          class="dtmf-masked"
          data-testid="dtmf-masked"
          title={s.title}
          key={s.from}
          style={{
            left: `${(s.from * 100).toFixed(3)}%`,
            width: `${Math.max(0.2, (s.to - s.from) * 100).toFixed(3)}%`,
          }}
        />
      ))}
    </>
  );
}
