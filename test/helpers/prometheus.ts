/**
 * Reads a Prometheus exposition with a real parser (parse-prometheus-text-format)
 * and looks samples up by name and labels.
 *
 * That parser folds every histogram family into one unlabelled series, so
 * labelled histograms are read a second time with their `# TYPE … histogram`
 * lines removed: then each `_bucket`, `_sum` and `_count` sample comes back
 * as it is, with its labels.
 */
import parsePrometheusTextFormat from 'parse-prometheus-text-format';

type Families = ReturnType<typeof parsePrometheusTextFormat>;

export interface Exposition {
  /** As the parser reads it, types included. */
  typed: Families;
  /** Every sample line with its labels, histograms unfolded. */
  series: Families;
}

export function parseExposition(text: string): Exposition {
  const typed = parsePrometheusTextFormat(text);
  const series = parsePrometheusTextFormat(text.replace(/^# TYPE \S+ histogram$/gm, ''));
  return { typed, series };
}

const matches = (labels: Record<string, string> | undefined, want: Record<string, string>): boolean =>
  Object.entries(want).every(([k, v]) => labels?.[k] === v);

function sum(families: Families, name: string, labels: Record<string, string>): number {
  return families
    .filter((f) => f.name === name)
    .flatMap((f) => f.metrics)
    .filter((m) => matches(m.labels, labels))
    .reduce((total, m) => total + Number(m.value ?? 0), 0);
}

/** A counter's or gauge's value summed over the matching series (0 when none exists yet). */
export function sample(exposition: Exposition, name: string, labels: Record<string, string> = {}): number {
  if (!exposition.typed.some((f) => f.name === name)) throw new Error(`no metric ${name}`);
  return sum(exposition.series, name, labels);
}

/** A histogram's observation count and sum over the matching series. */
export function histogram(
  exposition: Exposition,
  name: string,
  labels: Record<string, string> = {},
): { count: number; sum: number } {
  if (exposition.typed.find((f) => f.name === name)?.type !== 'HISTOGRAM') throw new Error(`no histogram ${name}`);
  return { count: sum(exposition.series, `${name}_count`, labels), sum: sum(exposition.series, `${name}_sum`, labels) };
}
