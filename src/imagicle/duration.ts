/**
 * ISO 8601 durations as Imagicle uses them: `PT1M30S`, `PT4M4.28S`.
 * Formatting works on whole microseconds to avoid float drift, and prints
 * milliseconds (trailing zeros trimmed).
 */

const DURATION_RE =
  /^P(?:(\d+(?:[.,]\d+)?)D)?(?:T(?:(\d+(?:[.,]\d+)?)H)?(?:(\d+(?:[.,]\d+)?)M)?(?:(\d+(?:[.,]\d+)?)S)?)?$/;

/** Formats seconds as an ISO 8601 duration with millisecond precision. */
export function formatIsoDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) throw new RangeError(`invalid duration: ${seconds}`);
  const totalMs = Math.round(seconds * 1000);
  const hours = Math.floor(totalMs / 3_600_000);
  const minutes = Math.floor((totalMs % 3_600_000) / 60_000);
  const ms = totalMs % 60_000;
  const wholeSeconds = Math.floor(ms / 1000);
  const fraction = ms % 1000;
  let out = 'PT';
  if (hours > 0) out += `${hours}H`;
  if (minutes > 0) out += `${minutes}M`;
  if (wholeSeconds > 0 || fraction > 0 || out === 'PT') {
    out += String(wholeSeconds);
    if (fraction > 0) out += `.${String(fraction).padStart(3, '0').replace(/0+$/, '')}`;
    out += 'S';
  }
  return out;
}

/** Parses an ISO 8601 duration (days, hours, minutes, seconds; fractions allowed) into seconds, or null. */
export function parseIsoDuration(text: string): number | null {
  const match = DURATION_RE.exec(text.trim());
  if (!match || text.trim() === 'P' || text.trim() === 'PT') return null;
  const [, d, h, m, s] = match;
  if (d === undefined && h === undefined && m === undefined && s === undefined) return null;
  const num = (v: string | undefined): number => (v === undefined ? 0 : Number(v.replace(',', '.')));
  return num(d) * 86_400 + num(h) * 3_600 + num(m) * 60 + num(s);
}
