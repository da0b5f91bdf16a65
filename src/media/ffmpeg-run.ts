/**
 * ffmpeg's argv under the gateway's limits (file protocol only, allowed
 * demuxers only, an allocation ceiling) and the runner of a transcode with
 * progress. What to run is decided elsewhere (plan.ts, render-job.ts); this
 * file only runs it.
 */
import path from 'node:path';
import { maxAllocBytes, runProcess, ProcessError, type RunResult } from './process.js';
import { AUTODETECT_DEMUXERS, type RawHint } from './formats.js';
import type { FfmpegBinaries } from './ffmpeg-tools.js';

/** `-max_alloc` (global option of ffprobe and ffmpeg): no single allocation above half the memory ceiling. */
export function allocOptions(): string[] {
  const bytes = maxAllocBytes();
  return bytes === undefined ? [] : ['-max_alloc', String(bytes)];
}

/** Input options shared by ffprobe and ffmpeg: file protocol only, allowed demuxers only. */
export function inputOptions(hint: RawHint | undefined): string[] {
  if (hint) {
    return [
      '-protocol_whitelist',
      'file',
      '-format_whitelist',
      hint.demuxer,
      '-f',
      hint.demuxer,
      ...Object.entries(hint.options).flatMap(([k, v]) => [`-${k}`, v]),
      ...(hint.decoder ? ['-c:a', hint.decoder] : []),
    ];
  }
  return ['-protocol_whitelist', 'file', '-format_whitelist', AUTODETECT_DEMUXERS.join(',')];
}

/** The argv form of a server-generated path: `file:` stops ffmpeg from reading it as a URL or option. */
export function fileArg(filePath: string): string {
  return `file:${path.resolve(filePath)}`;
}

export class FfmpegError extends ProcessError {}

export function throwIfInterrupted(result: RunResult, argv: string[]): void {
  if (result.aborted) throw new FfmpegError('aborted', argv, result);
  if (result.timedOut) throw new FfmpegError('timed out', argv, result);
  if (result.outOfMemory) throw new FfmpegError('out of memory', argv, result);
}

export interface TranscodeOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  onProgress?: (outSeconds: number) => void;
}

/** Runs ffmpeg with the given argv (render-job.ts argsFor, or a caller's own); rejects with FfmpegError carrying argv and stderr tail. */
export async function runFfmpeg(bins: FfmpegBinaries, args: string[], options: TranscodeOptions): Promise<RunResult> {
  const argv = ['-hide_banner', '-nostdin', '-nostats', '-v', 'error', ...allocOptions(), '-progress', 'pipe:1'];
  argv.push(...args);
  const result = await runProcess(bins.ffmpeg, argv, {
    timeoutMs: options.timeoutMs,
    ...(options.signal ? { signal: options.signal } : {}),
    onStdoutLine: (line) => {
      if (!options.onProgress || !line.startsWith('out_time_us=')) return;
      const us = Number(line.slice('out_time_us='.length));
      if (Number.isFinite(us) && us >= 0) options.onProgress(us / 1e6);
    },
  });
  throwIfInterrupted(result, [bins.ffmpeg, ...argv]);
  if (result.code !== 0) {
    throw new FfmpegError(`ffmpeg exited with ${result.code ?? result.signal}`, [bins.ffmpeg, ...argv], result);
  }
  return result;
}
