/**
 * What a failed render means for the client: an ffmpeg failure turned into
 * the gateway's error (bad audio, too much memory, a full disk, a timeout).
 */
import { badAudio, GatewayError } from '../errors.js';
import { FfmpegError } from '../media/ffmpeg-run.js';
import type { ProbeResult } from '../media/ffprobe.js';
import { currentChildLimits } from '../media/process.js';
import { insufficientStorage } from './disk.js';

/** The memory refusal: the same message whether the estimate or the operating system's ceiling caught it. */
export function needsTooMuchMemory(what: string): GatewayError {
  const mb = Math.round(currentChildLimits().maxMemoryBytes / (1024 * 1024));
  return badAudio(`The file needs more memory than allowed to be read (${what}; the limit is ${mb} MB per process)`);
}

export function transcodeError(error: unknown, probed: ProbeResult | undefined): GatewayError {
  if (error instanceof GatewayError) return error;
  if (error instanceof FfmpegError) {
    if (error.result.aborted) {
      return new GatewayError('ABORTED', 'The request was aborted', { cause: error });
    }
    if (/No space left on device|Disk quota exceeded/i.test(error.result.stderrTail ?? '')) {
      return insufficientStorage('The gateway ran out of disk space while converting the audio; retry later', error);
    }
    if (error.result.outOfMemory) {
      const err = needsTooMuchMemory(`${error.argv[0]?.split('/').pop() ?? 'ffmpeg'} ran out of memory`);
      Object.assign(err.detail, { argv: error.argv, stderr: error.result.stderrTail });
      return err;
    }
    if (error.result.timedOut) {
      return new GatewayError('PROCESS_TIMEOUT', 'Decoding the audio took too long', {
        cause: error,
        detail: { argv: error.argv, stderr: error.result.stderrTail },
      });
    }
    const what = probed ? `${probed.audio.codecName} in ${probed.formatName}` : 'the file';
    const lastLine =
      (error.result.stderrTail ?? '')
        .trim()
        .split('\n')
        .pop()
        ?.replace(/file:\S+/g, 'input') ?? '';
    return badAudio(`The audio (${what}) cannot be decoded${lastLine ? `: ${lastLine}` : ''}`, error, {
      argv: error.argv,
      stderr: error.result.stderrTail,
    });
  }
  return new GatewayError('PROCESS_FAILED', 'Audio processing failed', { cause: error });
}

/** Names the part in an audio error, so the client knows which leg is at fault. */
export function inPart(error: unknown, part: string | undefined): unknown {
  if (part !== undefined && error instanceof GatewayError && error.code === 'BAD_AUDIO') {
    return new GatewayError(error.code, `${part}: ${error.message}`, {
      cause: error,
      detail: error.detail,
    });
  }
  return error;
}
