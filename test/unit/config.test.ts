import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const c = loadConfig({});
    expect(c.port).toBe(8080);
    expect(c.output).toEqual({ format: 'pcm16', sampleRate: 8000, channels: 'keep', mp3BitrateKbps: 32 });
    expect(c.limits.maxPartBytes).toBe(268_435_456);
    expect(c.imagicleUrl).toBeUndefined();
    expect(Object.isFrozen(c.output)).toBe(true);
  });

  it('lists every problem at once', () => {
    try {
      loadConfig({ PORT: 'abc', OUTPUT_FORMAT: 'opus', CHANNELS: 'quad', IMAGICLE_URL: 'ftp://x' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const problems = (error as ConfigError).problems.join('\n');
      for (const name of ['PORT', 'OUTPUT_FORMAT', 'CHANNELS', 'IMAGICLE_URL']) expect(problems).toContain(name);
    }
  });

  it('refuses production without IMAGICLE_URL, and half-set credentials', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/IMAGICLE_URL/);
    expect(() => loadConfig({ IMAGICLE_URL: 'https://ucx.example.com', IMAGICLE_USERNAME: 'u' })).toThrow(
      /IMAGICLE_PASSWORD/,
    );
  });

  it('normalises the upstream URL and reads credentials', () => {
    // ALLOW_ANONYMOUS: credentials without caller authentication are refused otherwise (test/unit/hardening-config.test.ts).
    const c = loadConfig({
      IMAGICLE_URL: 'https://ucx.example.com/',
      IMAGICLE_USERNAME: 'u',
      IMAGICLE_PASSWORD: 'p',
      ALLOW_ANONYMOUS: 'true',
    });
    expect(c.imagicleUrl).toBe('https://ucx.example.com');
    expect(c.imagicleCredentials).toEqual({ username: 'u', password: 'p' });
  });

  it('refuses an MP3 sample rate LAME cannot encode', () => {
    expect(() => loadConfig({ OUTPUT_FORMAT: 'mp3', OUTPUT_SAMPLE_RATE: '9000' })).toThrow(/OUTPUT_SAMPLE_RATE/);
  });
});
