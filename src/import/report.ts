/** `--report <file.csv>`: one line per file, written as the run goes, so a crash keeps what was done. */
import { createWriteStream, type WriteStream } from 'node:fs';
import type { FileReport } from './process-file.js';

export const REPORT_COLUMNS = ['path', 'status', 'imagicleIds', 'parts', 'duration', 'decision', 'error'] as const;

/** RFC 4180: quoted when it holds a comma, a quote or a line break; quotes doubled. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export function reportLine(r: FileReport): string {
  const values = [
    r.path,
    r.status,
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

  constructor(file: string) {
    this.out = createWriteStream(file, { flags: 'w' });
    this.out.write(`${REPORT_COLUMNS.join(',')}\n`);
  }

  add(r: FileReport): void {
    this.out.write(reportLine(r));
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) =>
      this.out.end((error?: Error | null) => (error ? reject(error) : resolve())),
    );
  }
}
