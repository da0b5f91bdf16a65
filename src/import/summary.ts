/**
 * What a finished (or interrupted) import prints: the readable summary for a
 * person, or one JSON object for a script (`--json`).
 */
import type { FileReport } from './file-report.js';
import type { RunSummary } from './run.js';

/** "2.35 h", "12.4 min" or "38.2 s" of audio. */
function audioLength(seconds: number): string {
  if (seconds >= 3600) return `${(seconds / 3600).toFixed(2)} h`;
  if (seconds >= 60) return `${(seconds / 60).toFixed(1)} min`;
  return `${seconds.toFixed(1)} s`;
}

const statusCount = (s: RunSummary, status: FileReport['status']): number =>
  s.reports.filter((r) => r.status === status).length;

const partsOf = (s: RunSummary, status: FileReport['status'], unknown: number): number =>
  s.reports.reduce((n, r) => n + (r.status === status ? (r.parts ?? unknown) : 0), 0);

export function summaryText(s: RunSummary, dryRun: boolean): string {
  const c = s.counters;
  const seconds = (s.elapsedMs / 1000).toFixed(1);
  const head = s.interrupted
    ? `${dryRun ? 'Dry run' : 'Import'} interrupted after ${seconds} s: ${c.done} of ${c.total} files; run the same command to resume`
    : `${dryRun ? 'Dry run' : 'Import'} finished in ${seconds} s: ${c.done} of ${c.total} files`;
  const lines = [
    head,
    dryRun
      ? `  would send:         ${statusCount(s, 'would-send')} (${audioLength(c.audioSeconds)} of audio, about ${partsOf(s, 'would-send', 1)} recordings in Imagicle)`
      : `  delivered:          ${statusCount(s, 'delivered')} (${audioLength(c.audioSeconds)} of audio, ${partsOf(s, 'delivered', 0)} recordings in Imagicle)`,
    `  already delivered:  ${statusCount(s, 'already-delivered')}`,
    `  same recording as another file: ${statusCount(s, 'duplicate')}`,
    `  invalid metadata:   ${statusCount(s, 'invalid')}`,
    `  failed:             ${statusCount(s, 'failed')}`,
    ...(c.waited > 0
      ? [
          `  waiting for Imagicle: ${c.waited} (kept pending, not failed: run the same command again once Imagicle answers)`,
          `    last upstream error: ${c.lastUpstreamError ?? 'unknown'}`,
        ]
      : []),
    `  possible duplicates (a part re-sent after an interrupted send): ${c.possibleDuplicates}`,
  ];
  return `${lines.join('\n')}\n`;
}

/** `--json`: the last line, after one object per file. */
export function summaryJson(s: RunSummary, dryRun: boolean): Record<string, unknown> {
  const c = s.counters;
  return {
    type: 'summary',
    dryRun,
    interrupted: s.interrupted,
    elapsedSeconds: Math.round(s.elapsedMs) / 1000,
    files: c.total,
    done: c.done,
    delivered: statusCount(s, 'delivered'),
    wouldSend: statusCount(s, 'would-send'),
    alreadyDelivered: statusCount(s, 'already-delivered'),
    duplicate: statusCount(s, 'duplicate'),
    invalid: statusCount(s, 'invalid'),
    failed: statusCount(s, 'failed'),
    waiting: statusCount(s, 'waiting'),
    lastUpstreamError: c.waited > 0 ? c.lastUpstreamError : undefined,
    audioSeconds: Math.round(c.audioSeconds * 1000) / 1000,
    recordings: dryRun ? partsOf(s, 'would-send', 1) : partsOf(s, 'delivered', 0),
    possibleDuplicates: c.possibleDuplicates,
  };
}
