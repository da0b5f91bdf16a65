/**
 * A job's inputs as its preparation reads them: files of its own folder, recordings referenced in place in a
 * watched folder (source-reference.ts), opened and proven unchanged first, or files its caller holds open (an
 * import's descriptors). A referenced file is someone else's:
 * the pipeline gets it read-only (a header repair works on a copy), and a part that would be the file itself
 * (compliant audio, passed through) is copied into the job's folder, which must hold everything it delivers.
 */
import { copyFile, constants } from 'node:fs/promises';
import path from 'node:path';
import type { FittedAudio } from '../pipeline/fit.js';
import type { AudioInput } from '../pipeline/prepared.js';
import { openSource, type OpenedSource } from '../source-reference.js';
import type { JobRecord, SpooledInput } from './job.js';

export interface OpenedInputs {
  attachment: AudioInput;
  remoteAttachment: AudioInput | undefined;
  /** Throws GONE if a referenced file was written to while it was read. */
  checkUnchanged(): Promise<void>;
  close(): Promise<void>;
}

/** A recording's files that its caller holds open (a file door): read where they are, never written. */
export interface HeldInputs {
  attachment: AudioInput;
  remoteAttachment?: AudioInput | undefined;
}

export async function openJobInputs(
  job: JobRecord,
  dir: string,
  signal?: AbortSignal,
  held?: HeldInputs,
): Promise<OpenedInputs> {
  if (held) {
    const readOnly = (input: AudioInput): AudioInput => ({ ...input, readOnly: true });
    const remote = held.remoteAttachment;
    return {
      attachment: readOnly(held.attachment),
      remoteAttachment: remote ? readOnly(remote) : undefined,
      // The holder opened them once and reads nothing else: what it hashed is what they hold.
      checkUnchanged: () => Promise.resolve(),
      close: () => Promise.resolve(),
    };
  }
  const sources: OpenedSource[] = [];
  const open = async (input: SpooledInput): Promise<AudioInput> => {
    const { originalName, extension } = input;
    if (!input.source) return { path: path.join(dir, input.file), originalName, extension };
    const source = await openSource(input.source, signal);
    sources.push(source);
    return { path: source.path, originalName, extension, readOnly: true };
  };
  const close = async (): Promise<void> => {
    await Promise.all(sources.map((s) => s.close()));
  };
  try {
    const attachment = await open(job.inputs.attachment);
    const remoteAttachment = job.inputs.remoteAttachment ? await open(job.inputs.remoteAttachment) : undefined;
    return {
      attachment,
      remoteAttachment,
      checkUnchanged: async () => {
        for (const source of sources) await source.checkUnchanged();
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The fitted parts, each inside `dir`: a part that is a referenced input itself is copied in (a reflink if it can). */
export async function partsInside(fitted: FittedAudio, dir: string): Promise<FittedAudio> {
  const outside = (p: string): boolean => {
    const rel = path.relative(dir, p);
    return rel.startsWith('..') || path.isAbsolute(rel);
  };
  if (!fitted.parts.some((part) => outside(part.path))) return fitted;
  const parts = await Promise.all(
    fitted.parts.map(async (part) => {
      if (!outside(part.path)) return part;
      const own = path.join(dir, `part-${part.index}${path.extname(part.filename)}`);
      await copyFile(part.path, own, constants.COPYFILE_FICLONE);
      return { ...part, path: own };
    }),
  );
  return { ...fitted, parts };
}
