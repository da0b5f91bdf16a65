/**
 * The ffmpeg and ffprobe binaries: where they are (FFMPEG_PATH / FFPROBE_PATH,
 * ffmpeg-static, PATH) and whether they can do what the gateway needs.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { runProcess } from './process.js';

export interface FfmpegBinaries {
  ffmpeg: string;
  ffprobe: string;
}

const REQUIRED_ENCODERS = ['pcm_s16le', 'pcm_u8', 'pcm_alaw', 'pcm_mulaw', 'libmp3lame'] as const;

/** FFMPEG_PATH / FFPROBE_PATH, else ffmpeg-static where its installer worked, else PATH. */
export function resolveBinaries(paths: {
  ffmpegPath?: string | undefined;
  ffprobePath?: string | undefined;
}): FfmpegBinaries {
  let ffmpeg = paths.ffmpegPath;
  if (!ffmpeg) {
    try {
      const require = createRequire(import.meta.url);
      const fromPackage: unknown = require('ffmpeg-static');
      if (typeof fromPackage === 'string' && existsSync(fromPackage)) ffmpeg = fromPackage;
    } catch {
      // Optional dependency absent: fall back to PATH.
    }
  }
  return { ffmpeg: ffmpeg ?? 'ffmpeg', ffprobe: paths.ffprobePath ?? 'ffprobe' };
}

export interface ToolCheck {
  ok: boolean;
  ffmpegVersion?: string;
  ffprobeVersion?: string;
  problems: string[];
}

/** Checks that both binaries run and that every encoder we may need exists. */
export async function checkTools(bins: FfmpegBinaries, timeoutMs = 10_000): Promise<ToolCheck> {
  const problems: string[] = [];
  const versionOf = async (bin: string): Promise<string | undefined> => {
    try {
      const r = await runProcess(bin, ['-hide_banner', '-version'], { timeoutMs });
      if (r.code !== 0) {
        problems.push(`${bin} -version exited with ${r.code}`);
        return undefined;
      }
      return r.stdout.split('\n')[0]?.trim();
    } catch (error) {
      problems.push(error instanceof Error ? error.message : String(error));
      return undefined;
    }
  };
  const [ffmpegVersion, ffprobeVersion] = await Promise.all([versionOf(bins.ffmpeg), versionOf(bins.ffprobe)]);
  if (ffmpegVersion) {
    const r = await runProcess(bins.ffmpeg, ['-hide_banner', '-encoders'], { timeoutMs });
    const available = new Set(
      r.stdout
        .split('\n')
        .map((line) => /^\s*A\S*\s+(\S+)/.exec(line)?.[1])
        .filter((name): name is string => name !== undefined),
    );
    for (const encoder of REQUIRED_ENCODERS)
      if (!available.has(encoder)) problems.push(`ffmpeg lacks the ${encoder} encoder`);
  }
  return {
    ok: problems.length === 0,
    ...(ffmpegVersion ? { ffmpegVersion } : {}),
    ...(ffprobeVersion ? { ffprobeVersion } : {}),
    problems,
  };
}
