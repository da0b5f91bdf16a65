/**
 * The media policy is built once from the configuration and frozen: no step of a job can change what the
 * configuration decided for the next one.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { mediaPolicyOf } from '../../src/media-policy.js';

describe('mediaPolicyOf', () => {
  it('carries what the configuration decides about media, frozen all the way down', () => {
    const config = loadConfig({ OUTPUT_FORMAT: 'mp3', MAX_DURATION_SECONDS: '7200', LEVEL: 'speech' });
    const media = mediaPolicyOf(config);
    expect(media.output.format).toBe('mp3');
    expect(media.limits.maxDurationSeconds).toBe(7200);
    expect(media.level).toBe(config.level);
    expect(media.bounds).toEqual({
      maxExpansion: config.bounds.maxExpansion,
      maxPartBytes: config.limits.maxPartBytes,
    });
    for (const part of [media, media.output, media.limits, media.bounds, media.stereo, media.level]) {
      expect(Object.isFrozen(part)).toBe(true);
    }
    expect(() => {
      (media.limits as { maxDurationSeconds: number }).maxDurationSeconds = 1;
    }).toThrow(TypeError);
  });
});
