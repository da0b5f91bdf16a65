/**
 * Durations in configuration (SPOOL_MAX_AGE, DEDUP_WINDOW): a plain number
 * of seconds, or a number with a unit: ms, s, m, h, d (e.g. `3d`, `90m`).
 */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds, or undefined when the text is not a duration. */
export function parseInterval(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/i.exec(text.trim());
  if (!match) return undefined;
  const unit = (match[2] ?? 's').toLowerCase();
  const ms = Number(match[1]) * UNIT_MS[unit]!;
  return Number.isFinite(ms) ? Math.round(ms) : undefined;
}
