/**
 * Making a prepared recording fit Imagicle's per-file limit, by policy:
 * split it (default), refuse it (413), or re-encode it denser and split
 * only what still does not fit.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { OutputFormat } from '../media/output.js';
import { tooLarge } from '../errors.js';
import { formatIsoDuration } from '../imagicle/duration.js';
import { bytesPerSecond, targetFor } from '../media/plan.js';
import { splitMp3, splitWav, type PartFile } from '../media/split.js';
import { readWavInfo } from '../media/wav.js';
import { readMp3Info } from '../media/mp3.js';
import { mp3FrameLoudness } from '../media/mp3-loudness.js';
import { prepareAudio } from './prepare.js';
import type { AudioInput, PrepareDeps, PreparedAudio } from './prepared.js';

export const OVERSIZE_POLICIES = ['split', 'reject', 'compress'] as const;
export type OversizePolicy = (typeof OVERSIZE_POLICIES)[number];

interface OversizeSettings {
  policy: OversizePolicy;
  compressOrder: readonly OutputFormat[];
  silenceWindowSeconds: number;
}

export interface FitDeps extends PrepareDeps {
  maxPartBytes: number;
  oversize: OversizeSettings;
}

export interface DeliverablePart {
  /** 1-based. */
  index: number;
  count: number;
  path: string;
  bytes: number;
  samples: number;
  sampleRate: number;
  durationSeconds: number;
  isoDuration: string;
  /** Exact offset of this part from the start of the recording. */
  startOffsetSeconds: number;
  filename: string;
}

export interface FittedAudio {
  prepared: PreparedAudio;
  parts: DeliverablePart[];
  oversize: { action: 'none' | 'split' | 'compressed' | 'compressed-and-split'; reasons: string[] };
}

export async function fitToLimit(
  first: PreparedAudio,
  input: AudioInput,
  workDir: string,
  deps: FitDeps,
  signal?: AbortSignal,
): Promise<FittedAudio> {
  const limit = deps.maxPartBytes;
  if (first.bytes <= limit)
    return { prepared: first, parts: [wholePart(first)], oversize: { action: 'none', reasons: [] } };

  const tooBig = `The converted recording is ${first.bytes} bytes, more than the limit of ${limit} bytes per file`;
  if (deps.oversize.policy === 'reject') throw tooLarge(`${tooBig} (OVERSIZE=reject)`);

  let prepared = first;
  const reasons = [tooBig];
  let compressed = false;
  if (deps.oversize.policy === 'compress') {
    const format = denserFormat(first, deps, limit);
    if (format) {
      const dir = path.join(workDir, 'compress');
      await mkdir(dir, { recursive: true });
      const denser = await prepareAudio(
        input,
        dir,
        {
          ...deps,
          output: { ...deps.output, format },
          forceTranscode: `re-encoded as ${format} to fit ${limit} bytes (OVERSIZE=compress)`,
        },
        signal,
      );
      // The re-encode starts from the first render (mapped, levelled, masked: reencodeSource), so what those steps
      // reported still describes this audio; the job and the console read it from here.
      prepared = { ...denser, stereo: first.stereo, level: first.level, dtmf: first.dtmf };
      compressed = true;
      reasons.push(`re-encoded as ${format}: ${prepared.bytes} bytes`);
      if (prepared.bytes <= limit) {
        return { prepared, parts: [wholePart(prepared)], oversize: { action: 'compressed', reasons } };
      }
    }
  }

  const files = await splitFile(prepared, workDir, deps, signal);
  reasons.push(`split into ${files.length} parts of at most ${limit} bytes`);
  const stem = prepared.filename.replace(/\.[^.]+$/, '');
  const parts = files.map((f) => ({
    index: f.index,
    count: files.length,
    path: f.path,
    bytes: f.bytes,
    samples: f.samples,
    sampleRate: f.sampleRate,
    durationSeconds: f.durationSeconds,
    isoDuration: formatIsoDuration(f.durationSeconds),
    startOffsetSeconds: f.startSample / f.sampleRate,
    filename: `${stem}-part${f.index}of${files.length}.${prepared.container}`,
  }));
  return { prepared, parts, oversize: { action: compressed ? 'compressed-and-split' : 'split', reasons } };
}

function wholePart(prepared: PreparedAudio): DeliverablePart {
  return {
    index: 1,
    count: 1,
    path: prepared.path,
    bytes: prepared.bytes,
    samples: prepared.samples,
    sampleRate: prepared.format.sampleRate,
    durationSeconds: prepared.durationSeconds,
    isoDuration: prepared.isoDuration,
    startOffsetSeconds: 0,
    filename: prepared.filename,
  };
}

/**
 * The first format of COMPRESS_ORDER whose estimated size fits; if none
 * fits, the densest of them (it will be split, in fewer parts). Undefined
 * when no format in the order is denser than what we have.
 */
function denserFormat(prepared: PreparedAudio, deps: FitDeps, limit: number): OutputFormat | undefined {
  const estimate = (format: OutputFormat): number =>
    bytesPerSecond(targetFor({ ...deps.output, format }, prepared.format.channels)) * prepared.durationSeconds + 4096;
  const candidates = deps.oversize.compressOrder.filter((f) => estimate(f) < prepared.bytes * 0.95);
  if (candidates.length === 0) return undefined;
  return (
    candidates.find((f) => estimate(f) <= limit) ?? candidates.reduce((a, b) => (estimate(b) < estimate(a) ? b : a))
  );
}

async function splitFile(
  prepared: PreparedAudio,
  workDir: string,
  deps: FitDeps,
  signal?: AbortSignal,
): Promise<PartFile[]> {
  const dir = path.join(workDir, 'parts');
  await mkdir(dir, { recursive: true });
  const options = {
    maxPartBytes: deps.maxPartBytes,
    silenceWindowSeconds: deps.oversize.silenceWindowSeconds,
    workDir: dir,
  };
  if (prepared.container === 'wav') {
    const info = await readWavInfo(prepared.path);
    if (!info) throw new Error('the converted WAV cannot be read back');
    return splitWav(prepared.path, info, options);
  }
  const info = await readMp3Info(prepared.path);
  if (!info) throw new Error('the MP3 cannot be read back');
  return splitMp3(prepared.path, info, options, mp3FrameLoudness(deps.bins, dir, info.samplesPerFrame, signal));
}
