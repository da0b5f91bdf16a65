/**
 * `--report <file.csv>`: one line per file, in the order of the input (the
 * folder's sorted walk, the manifest's rows), written as the run goes, so
 * that a crash keeps what was done: an outcome that arrives early waits
 * until every file before it has its line.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import type { RecordingMetadata } from '../imagicle/schema.js';
import type { FileReport } from './file-report.js';

const REPORT_COLUMNS = [
  'path',
  'status',
  'pbxCallId',
  'startDateTime',
  'direction',
  'localUsername',
  'localPhoneNumber',
  'remotePhoneNumber',
  'imagicleIds',
  'parts',
  'duration',
  'decision',
  'error',
] as const;

/** What the report says of the recording itself, when its metadata resolved. */
export type ReportMetadata = Pick<
  RecordingMetadata,
  'pbxCallId' | 'startDateTime' | 'direction' | 'localParty' | 'remoteParty'
>;

/**
 * A spreadsheet runs a cell that starts with = + - @ (or a tab or carriage return) as a formula:
 * a file name or an error message is data, so it gets a leading single quote (OWASP, "CSV injection").
 */
function neutralised(value: string): string {
  return /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
}

/** RFC 4180: quoted when it holds a comma, a quote or a line break; quotes doubled. */
export function csvField(value: string): string {
  const safe = neutralised(value);
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

function reportLine(r: FileReport, metadata?: ReportMetadata): string {
  const values = [
    r.path,
    r.status,
    metadata?.pbxCallId ?? '',
    metadata?.startDateTime ?? '',
    metadata?.direction === undefined ? '' : String(metadata.direction),
    metadata?.localParty?.username ?? '',
    metadata?.localParty?.phoneNumber ?? '',
    metadata?.remoteParty?.phoneNumber ?? '',
    r.ids.join(' '),
    r.parts === undefined ? '' : String(r.parts),
    r.duration ?? '',
    r.decision ?? '',
    r.error ?? '',
  ];
  return `${values.map(csvField).join(',')}\n`;
}

export class ReportWriter {
  private readonly out: WriteStream;
  /** Lines that arrived before a file listed earlier had its own. */
  private readonly waiting = new Map<number, string>();
  private next = 0;

  constructor(file: string) {
    this.out = createWriteStream(file, { flags: 'w' });
    this.out.write(`${REPORT_COLUMNS.join(',')}\n`);
  }

  /** `index`: the file's position in the input. */
  add(index: number, r: FileReport, metadata?: ReportMetadata): void {
    this.waiting.set(index, reportLine(r, metadata));
    while (this.waiting.has(this.next)) {
      this.out.write(this.waiting.get(this.next)!);
      this.waiting.delete(this.next);
      this.next += 1;
    }
  }

  /** Writes what still waits (files interrupted before theirs), in order, and closes. */
  close(): Promise<void> {
    for (const index of [...this.waiting.keys()].sort((a, b) => a - b)) this.out.write(this.waiting.get(index)!);
    this.waiting.clear();
    return new Promise((resolve, reject) =>
      this.out.end((error?: Error | null) => (error ? reject(error) : resolve())),
    );
  }
}
