/** Refused inputs get a precise reason label; the file doors' counter maps each outcome. */
import { describe, expect, it } from 'vitest';
import { refusalReason } from '../../src/refusal.js';
import { bucketsUpTo, ffmpegLabel, GatewayMetrics } from '../../src/metrics.js';
import { doorOutcome } from '../../src/import/cli.js';

describe('refusalReason', () => {
  it.each([
    [{ code: 'BAD_AUDIO', message: 'The attachment is empty' }, 'empty'],
    [{ code: 'BAD_AUDIO', message: 'The file is empty or truncated' }, 'truncated'],
    [{ code: 'BAD_AUDIO', message: 'The file is not audio: no known audio format was recognised' }, 'not_audio'],
    [{ code: 'BAD_AUDIO', message: 'The recording lasts 13 h, more than the limit of 43200 seconds' }, 'too_long'],
    [
      { code: 'BAD_AUDIO', message: 'The audio decodes to more than the limit of 60 seconds (its header said 1 s)' },
      'too_long',
    ],
    [
      { code: 'BAD_AUDIO', message: 'The audio decodes to far more than the 1 s its header declares: refused' },
      'lying_header',
    ],
    [{ code: 'BAD_AUDIO', message: 'The audio has 32 channels; at most 16 are accepted' }, 'too_many_channels'],
    [{ code: 'BAD_AUDIO', message: 'The file needs more memory than allowed to be read (x)' }, 'too_much_memory'],
    [{ code: 'BAD_AUDIO', message: 'The file (mov,mp4) has no audio track, only: video (h264)' }, 'no_audio'],
    [{ code: 'BAD_AUDIO', message: 'The file is an hls playlist or script, which the gateway refuses' }, 'unsupported'],
    [{ code: 'BAD_AUDIO', message: 'The audio (opus) cannot be decoded: input Invalid argument' }, 'undecodable'],
    [{ code: 'PROCESS_TIMEOUT', message: 'Decoding the audio took too long' }, 'decode_timeout'],
    [{ code: 'TOO_LARGE', message: 'The upload is larger than the limit of 10 bytes' }, 'upload_too_large'],
    [{ code: 'TOO_LARGE', message: '… at most 2000 times (MAX_EXPANSION)' }, 'expansion'],
    [{ code: 'TOO_LARGE', message: 'The recording … (OVERSIZE=reject)' }, 'oversize'],
    [{ code: 'BAD_METADATA', message: 'startDateTime is required' }, 'metadata'],
    [{ code: 'BAD_AUDIO', message: 'something new' }, 'other'],
  ])('%o → %s', (error, reason) => {
    expect(refusalReason(error)).toBe(reason);
  });
});

describe('metrics helpers', () => {
  it('ends the buckets at the configured ceiling', () => {
    expect(bucketsUpTo([1, 5, 10, 30], 20)).toEqual([1, 5, 10, 20]);
    expect(bucketsUpTo([1, 5], 5)).toEqual([1, 5]);
    expect(ffmpegLabel('ffmpeg version 5.1.9-0+deb12u1 Copyright (c) 2000')).toBe('5.1.9-0+deb12u1');
  });

  it('counts the file doors per door and outcome', async () => {
    expect(doorOutcome('already-delivered')).toBe('delivered');
    expect(doorOutcome('invalid')).toBe('invalid');
    expect(doorOutcome('failed')).toBe('failed');
    expect(doorOutcome('interrupted')).toBeUndefined();
    const metrics = new GatewayMetrics();
    metrics.doorFile('watch', 'taken');
    metrics.doorFile('watch', 'invalid');
    const text = await metrics.expose();
    expect(text).toMatch(/^imagicle_gateway_door_files_total\{door="watch",outcome="taken"\} 1$/m);
    expect(text).toMatch(/^imagicle_gateway_door_files_total\{door="watch",outcome="invalid"\} 1$/m);
  });
});
