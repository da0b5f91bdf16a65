/**
 * Manifests: a CSV with a header row, or JSON Lines, one recording per row.
 * Columns: file (relative to the manifest), remoteFile (second leg),
 * startDateTime, direction, localUsername, localPhoneNumber, remoteUsername,
 * remotePhoneNumber, pbxCallId, notes, preserved, channelOrder, sourceProfile, dtmf.
 * Empty cells are absent, so a sidecar, the pattern or the defaults fill them.
 */
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import type { MetadataLayer } from './metadata.js';
import { parseBoolean, parseDirection } from './metadata.js';
import { openRegularFile, UnsafeFileError } from '../safe-fs.js';

export interface ManifestRow {
  /** 1-based line (CSV: record number after the header + 1) for messages. */
  line: number;
  file: string | undefined;
  remoteFile: string | undefined;
  layer: MetadataLayer;
  stereo: { channelOrder?: string | undefined; sourceProfile?: string | undefined; dtmf?: string | undefined };
  /** A row that cannot be read at all (bad JSON line). */
  problem?: string | undefined;
}

const MANIFEST_COLUMNS = [
  'file',
  'remoteFile',
  'startDateTime',
  'direction',
  'localUsername',
  'localPhoneNumber',
  'remoteUsername',
  'remotePhoneNumber',
  'pbxCallId',
  'notes',
  'preserved',
  'channelOrder',
  'sourceProfile',
  'dtmf',
] as const;

export function isManifest(file: string): boolean {
  return /\.(csv|jsonl)$/i.test(file);
}

const present = (v: unknown): v is string | number | boolean =>
  v !== undefined && v !== null && !(typeof v === 'string' && v.trim() === '');
const text = (v: unknown): string | undefined => (present(v) ? String(v).trim() : undefined);

/** One row's values (CSV strings or JSON values) → its partial jsondata. */
export function rowToManifestRow(values: Record<string, unknown>, line: number): ManifestRow {
  const layer: MetadataLayer = {};
  if (present(values.startDateTime)) layer.startDateTime = text(values.startDateTime);
  if (present(values.direction)) layer.direction = parseDirection(values.direction);
  const local: Record<string, unknown> = {};
  if (present(values.localUsername)) local.username = text(values.localUsername);
  if (present(values.localPhoneNumber)) local.phoneNumber = text(values.localPhoneNumber);
  if (Object.keys(local).length > 0) layer.localParty = local;
  const remote: Record<string, unknown> = {};
  if (present(values.remoteUsername)) remote.username = text(values.remoteUsername);
  if (present(values.remotePhoneNumber)) remote.phoneNumber = text(values.remotePhoneNumber);
  if (Object.keys(remote).length > 0) layer.remoteParty = remote;
  if (present(values.pbxCallId)) layer.pbxCallId = text(values.pbxCallId);
  if (present(values.notes)) layer.notes = String(values.notes);
  if (present(values.preserved)) layer.preserved = parseBoolean(values.preserved);
  return {
    line,
    file: text(values.file),
    remoteFile: text(values.remoteFile),
    layer,
    stereo: {
      channelOrder: text(values.channelOrder),
      sourceProfile: text(values.sourceProfile),
      dtmf: text(values.dtmf),
    },
  };
}

/** The manifest itself: a regular file (a link the operator named is followed), read through its descriptor. */
async function readManifestText(file: string): Promise<string> {
  let opened;
  try {
    opened = await openRegularFile(await realpath(file));
  } catch (error) {
    if (error instanceof UnsafeFileError) throw new ManifestError(error.message);
    throw error;
  }
  try {
    return await opened.handle.readFile('utf8');
  } finally {
    await opened.close();
  }
}

export async function readManifest(file: string): Promise<ManifestRow[]> {
  const content = await readManifestText(file);
  if (path.extname(file).toLowerCase() === '.jsonl') {
    const rows: ManifestRow[] = [];
    content.split(/\r?\n/).forEach((raw, i) => {
      if (raw.trim() === '') return;
      try {
        const value: unknown = JSON.parse(raw);
        if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
        rows.push(rowToManifestRow(value as Record<string, unknown>, i + 1));
      } catch (error) {
        rows.push({
          line: i + 1,
          file: undefined,
          remoteFile: undefined,
          layer: {},
          stereo: {},
          problem: `line ${i + 1} is not a JSON object (${(error as Error).message})`,
        });
      }
    });
    return rows;
  }
  const records = parse(content, {
    columns: true,
    bom: true,
    skip_empty_lines: true,
    trim: true,
    relax_column_count: true,
  }) as Array<Record<string, string>>;
  const header = records.length > 0 ? Object.keys(records[0]!) : [];
  const unknown = header.filter((c) => !(MANIFEST_COLUMNS as readonly string[]).includes(c));
  if (unknown.length > 0)
    throw new ManifestError(
      `${file}: unknown column(s) ${unknown.join(', ')}; columns are ${MANIFEST_COLUMNS.join(', ')}`,
    );
  return records.map((r, i) => rowToManifestRow(r, i + 2));
}

export class ManifestError extends Error {}
