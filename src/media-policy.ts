/**
 * The media policy: everything the configuration decides about rendering (target, limits, oversize, stereo,
 * level, DTMF, VOX rate, output bounds), built once per process from the frozen configuration and frozen itself. The
 * tools (ffmpeg binaries), the metrics and the per-job parts (a disk reservation, a request's inputSampleRate,
 * a forced re-encode) are added beside it by whoever runs a job; nothing reads the configuration per request.
 */
import type { Config } from './config.js';

export type MediaSettings = ReturnType<typeof mediaPolicyOf>;

// The type is the value's own (every field present), so that a job's settings need no defaults.
export function mediaPolicyOf(config: Config) {
  return Object.freeze({
    output: config.output,
    limits: Object.freeze({
      maxDurationSeconds: config.limits.maxDurationSeconds,
      maxChannelsIn: config.limits.maxChannelsIn,
      processTimeoutMs: config.limits.processTimeoutMs,
    }),
    maxPartBytes: config.limits.maxPartBytes,
    oversize: config.oversize,
    stereo: config.stereo,
    level: config.level,
    dtmf: config.dtmf,
    voxSampleRate: config.voxSampleRate,
    bounds: Object.freeze({ maxExpansion: config.bounds.maxExpansion, maxPartBytes: config.limits.maxPartBytes }),
    truncated: config.truncated,
  });
}
