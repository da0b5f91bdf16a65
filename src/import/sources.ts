/**
 * What an import or a watched folder holds: recordings (one file, or two
 * legs from a manifest row), each with its metadata resolved from the
 * manifest, the sidecar, the pattern and the defaults, or the reason it
 * cannot be sent.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { RAW_HINTS } from '../media/formats.js';
import type { StereoRequestOptions } from '../pipeline/stereo-policy.js';
import { parseStereoOptions } from '../pipeline/call-options.js';
import { GatewayError } from '../errors.js';
import type { CompiledPattern } from './pattern.js';
import {
  patternLayer,
  PatternError,
  resolveMetadata,
  sidecarLayer,
  sidecarOptions,
  type MetadataLayer,
  type Resolved,
} from './metadata.js';
import { readManifest } from './manifest.js';
import { isInside, openRegularFile, readBounded, UnsafeFileError } from '../safe-fs.js';

export interface MetadataSources {
  pattern?: CompiledPattern | undefined;
  defaults?: MetadataLayer | undefined;
  timezone: string;
  /** Longest leg offset a manifest may ask for (MAX_DURATION_SECONDS). */
  maxOffsetMs: number;
}

export interface ImportItem {
  /** Absolute path of the audio (the local leg for two legs): the key in the state store. */
  path: string;
  /** Path shown in the report: relative to the import root. */
  display: string;
  remotePath?: string | undefined;
  /** The sidecar that went with it, if any (the watcher moves it along). */
  sidecarPath?: string | undefined;
  /**
   * The folder its files must be below, reached without following a link (safe-fs.ts); none: a path the operator
   * named outside any such folder (--allow-outside), where only the file itself must not be a link.
   */
  within?: string | undefined;
  /** Why it is not read at all (a manifest row naming a file outside its folder): a failure, reported as such. */
  refused?: string | undefined;
  metadata: Resolved;
  stereoOptions?: StereoRequestOptions | undefined;
}

/** Extensions taken from a folder: the raw telephony ones we decode by name, and common audio containers. */
const AUDIO_EXTENSIONS: ReadonlySet<string> = new Set([
  ...Object.keys(RAW_HINTS),
  ...[
    'wav',
    'wave',
    'mp3',
    'ogg',
    'oga',
    'opus',
    'spx',
    'flac',
    'm4a',
    'aac',
    'amr',
    'awb',
    'wma',
    'webm',
    'mka',
    'aif',
    'aiff',
    'au',
    'caf',
    'mp2',
    'ac3',
    'vox',
  ],
]);

function isAudioFile(name: string): boolean {
  return AUDIO_EXTENSIONS.has(path.extname(name).slice(1).toLowerCase());
}

export function sidecarFor(file: string): string {
  return file.replace(/\.[^./\\]*$/, '') + '.json';
}

/** A sidecar's limits: more is a permanent failure (docs/security.md). */
const MAX_SIDECAR_BYTES = 64 * 1024;
const MAX_SIDECAR_DEPTH = 32;

/**
 * Every audio name under `root`, sorted, skipping hidden entries and the named folders (relative to root). Links,
 * FIFOs and the like with an audio name are listed too, for the door to refuse them with a reason; a folder is
 * entered only when it is one (a link to a folder is not followed).
 */
export async function walkAudio(root: string, skipDirs: ReadonlySet<string> = new Set()): Promise<string[]> {
  const found: string[] = [];
  const visit = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!skipDirs.has(path.relative(root, full))) await visit(full);
      } else if (isAudioFile(entry.name)) {
        found.push(full);
      }
    }
  };
  await visit(root);
  return found;
}

/** The sidecar, opened without following a link, at most MAX_SIDECAR_BYTES, read through its descriptor. */
async function readSidecar(
  file: string,
  within: string | undefined,
): Promise<{ layer: MetadataLayer | undefined; problem?: string; path?: string; options?: Record<string, string> }> {
  const sidecar = sidecarFor(file);
  let text: string;
  try {
    const opened = await openRegularFile(sidecar, within);
    try {
      text = (await readBounded(opened, MAX_SIDECAR_BYTES)).toString('utf8');
    } finally {
      await opened.close();
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { layer: undefined };
    // A refusal names the file itself ("call.json is a symbolic link: refused"); anything else is an I/O error.
    const problem =
      error instanceof UnsafeFileError
        ? `the sidecar ${error.message.replace(path.dirname(sidecar) + path.sep, '')}`
        : `cannot read the sidecar ${path.basename(sidecar)}: ${(error as Error).message}`;
    return { layer: undefined, problem, path: sidecar };
  }
  try {
    return { layer: sidecarLayer(text, MAX_SIDECAR_DEPTH), path: sidecar, options: sidecarOptions(text) };
  } catch (error) {
    return { layer: undefined, problem: `${path.basename(sidecar)}: ${(error as Error).message}`, path: sidecar };
  }
}

/** defaults < pattern < sidecar < manifest row, then the schema; the first problem found is the reason. */
async function resolveFor(
  file: string,
  relative: string,
  sources: MetadataSources,
  within: string | undefined,
  manifestLayer?: MetadataLayer,
): Promise<{ metadata: Resolved; sidecarPath: string | undefined; sidecarOptions?: Record<string, string> }> {
  const sidecar = await readSidecar(file, within);
  if (sidecar.problem) return { metadata: { ok: false, reason: sidecar.problem }, sidecarPath: sidecar.path };
  let fromPattern: MetadataLayer | undefined;
  let patternMiss = false;
  if (sources.pattern) {
    try {
      fromPattern = patternLayer(sources.pattern, relative, sources.timezone);
      patternMiss = fromPattern === undefined;
    } catch (error) {
      if (!(error instanceof PatternError)) throw error;
      if (!sidecar.layer && !manifestLayer)
        return { metadata: { ok: false, reason: `file name: ${error.message}` }, sidecarPath: sidecar.path };
    }
  }
  const metadata = resolveMetadata([sources.defaults, fromPattern, sidecar.layer, manifestLayer], sources.timezone);
  if (!metadata.ok && patternMiss) {
    return {
      metadata: {
        ok: false,
        reason: `the name does not match --pattern ${sources.pattern!.source}; ${metadata.reason}`,
      },
      sidecarPath: sidecar.path,
    };
  }
  return { metadata, sidecarPath: sidecar.path, sidecarOptions: sidecar.options };
}

export async function itemForFile(file: string, root: string, sources: MetadataSources): Promise<ImportItem> {
  const relative = path.relative(root, file).split(path.sep).join('/');
  const resolved = await resolveFor(file, relative, sources, root);
  const { sidecarPath } = resolved;
  let { metadata } = resolved;
  // The sidecar's `dtmf` (issue 22), checked like a form field.
  let stereoOptions: StereoRequestOptions | undefined;
  if (resolved.sidecarOptions && Object.keys(resolved.sidecarOptions).length > 0) {
    try {
      stereoOptions = parseStereoOptions(resolved.sidecarOptions, {}, sources.maxOffsetMs);
    } catch (error) {
      if (!(error instanceof GatewayError)) throw error;
      if (metadata.ok) metadata = { ok: false, reason: error.message };
    }
  }
  return {
    path: file,
    display: relative,
    sidecarPath,
    metadata,
    within: root,
    ...(stereoOptions ? { stereoOptions } : {}),
  };
}

export async function itemsFromFolder(root: string, sources: MetadataSources): Promise<ImportItem[]> {
  const files = await walkAudio(root);
  const items: ImportItem[] = [];
  for (const file of files) items.push(await itemForFile(file, root, sources));
  return items;
}

export interface ManifestScope {
  /** The folder rows may name files under; default: the manifest's own. */
  root?: string | undefined;
  /** Rows may name files anywhere (each still opened without following a link, regular files only). */
  allowOutside?: boolean | undefined;
}

export async function itemsFromManifest(
  manifest: string,
  sources: MetadataSources,
  scope: ManifestScope = {},
): Promise<ImportItem[]> {
  const root = path.dirname(manifest);
  const allowed = path.resolve(scope.root ?? root);
  const rows = await readManifest(manifest);
  const items: ImportItem[] = [];
  for (const row of rows) {
    const where = `${path.basename(manifest)} line ${row.line}`;
    if (row.problem || !row.file) {
      items.push({
        path: path.join(root, `#line-${row.line}`),
        display: where,
        metadata: { ok: false, reason: row.problem ?? `${where}: the file column is empty` },
      });
      continue;
    }
    const file = path.resolve(root, row.file);
    const remotePath = row.remoteFile ? path.resolve(root, row.remoteFile) : undefined;
    const relative = path.relative(root, file).split(path.sep).join('/');
    const legs = [file, ...(remotePath ? [remotePath] : [])];
    const outside = legs.find((leg) => !isInside(allowed, leg));
    if (outside !== undefined && !scope.allowOutside) {
      items.push({
        path: file,
        display: row.file,
        metadata: { ok: false, reason: 'not read' },
        refused:
          `${where}: ${outside} is outside ${allowed}; a manifest names files under its own folder ` +
          '(or --root) only, unless --allow-outside is given',
      });
      continue;
    }
    const within = outside === undefined ? allowed : undefined;
    const resolved = await resolveFor(file, relative, sources, within, row.layer);
    let { metadata } = resolved;
    let stereoOptions: StereoRequestOptions | undefined;
    try {
      // The manifest's columns over the sidecar's options (its `dtmf`, issue 22).
      const fields = {
        ...resolved.sidecarOptions,
        ...(Object.fromEntries(Object.entries(row.stereo).filter(([, v]) => v !== undefined)) as Record<
          string,
          string
        >),
      };
      stereoOptions = parseStereoOptions(fields, {}, sources.maxOffsetMs);
    } catch (error) {
      if (!(error instanceof GatewayError)) throw error;
      if (metadata.ok) metadata = { ok: false, reason: error.message };
    }
    items.push({ path: file, display: row.file, remotePath, metadata, stereoOptions, within });
  }
  return items;
}
