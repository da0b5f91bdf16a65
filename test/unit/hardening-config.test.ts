/** The hardening settings in config.ts: validated together, every problem listed, no secret ever printed. */
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, requestTimeoutFor } from '../../src/config.js';

const PASSWORD = 'imagicle-secret-Pa55';
const creds = { IMAGICLE_URL: 'https://ucx.example.com', IMAGICLE_USERNAME: 'svc', IMAGICLE_PASSWORD: PASSWORD };

function problemsOf(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems.join('\n');
  }
  return '';
}

describe('access control settings', () => {
  it('refuses Imagicle credentials without caller authentication, unless ALLOW_ANONYMOUS=true', () => {
    const problems = problemsOf(creds);
    expect(problems).toMatch(/GATEWAY_API_KEYS or GATEWAY_BASIC_USERS: required/);
    expect(problems).not.toContain(PASSWORD);
    expect(loadConfig({ ...creds, ALLOW_ANONYMOUS: 'true' }).access.allowAnonymous).toBe(true);
  });

  it('takes API keys and Basic users in both forms', () => {
    const sha = createHash('sha256').update('bob-password').digest('hex');
    const c = loadConfig({
      ...creds,
      GATEWAY_API_KEYS: ' k1-0123456789abcdef , k2-0123456789abcdef ',
      GATEWAY_BASIC_USERS: `alice:pa:ss:word,bob:sha256:${sha.toUpperCase()}`,
    });
    expect(c.access.apiKeys).toEqual(['k1-0123456789abcdef', 'k2-0123456789abcdef']);
    expect(c.access.basicUsers).toEqual([
      { username: 'alice', secret: { kind: 'plain', password: 'pa:ss:word' } },
      { username: 'bob', secret: { kind: 'sha256', hex: sha } },
    ]);
  });

  it('lists every bad entry at once, by position, never by value', () => {
    const problems = problemsOf({
      ...creds,
      GATEWAY_API_KEYS: 'short-secret-1,ok-0123456789abcdef,has space 0123456789',
      GATEWAY_BASIC_USERS: 'nocolon,carol:sha256:abc,dave:tiny,erin:long-enough,erin:long-enough-2',
      ALLOW_ANONYMOUS: 'true',
      CONCURRENCY: '0',
      QUEUE_LIMIT: '-1',
    });
    for (const expected of [
      /GATEWAY_API_KEYS: key 1 is shorter than 16/,
      /GATEWAY_API_KEYS: key 3 contains spaces/,
      /GATEWAY_BASIC_USERS: entry 1 must be user:password/,
      /entry 2 \(carol\): sha256: must be followed by 64 hex digits/,
      /entry 3 \(dave\): the password must have at least 8 characters/,
      /entry 5 \(erin\): the user appears more than once/,
      /ALLOW_ANONYMOUS: cannot be true while/,
      /CONCURRENCY/,
      /QUEUE_LIMIT/,
    ]) {
      expect(problems).toMatch(expected);
    }
    for (const secret of ['short-secret-1', 'has space', 'tiny', 'long-enough', PASSWORD])
      expect(problems).not.toContain(secret);
  });

  it('refuses credentials inside IMAGICLE_URL', () => {
    const problems = problemsOf({ IMAGICLE_URL: `https://svc:${PASSWORD}@ucx.example.com` });
    expect(problems).toMatch(/IMAGICLE_URL: must not contain credentials/);
    expect(problems).not.toContain(PASSWORD);
  });
});

describe('upstream TLS settings', () => {
  it('reads IMAGICLE_CA_FILE at startup, and refuses a missing or non-PEM file', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cfg-ca-'));
    try {
      const pem = path.join(dir, 'ca.pem');
      writeFileSync(pem, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
      writeFileSync(path.join(dir, 'not.pem'), 'hello');
      expect(loadConfig({ IMAGICLE_CA_FILE: pem }).upstreamTls).toMatchObject({
        caFile: pem,
        ca: expect.stringContaining('BEGIN CERTIFICATE') as unknown as string,
        insecure: false,
      });
      expect(problemsOf({ IMAGICLE_CA_FILE: path.join(dir, 'missing.pem') })).toMatch(
        /IMAGICLE_CA_FILE: cannot read .*ENOENT/,
      );
      expect(problemsOf({ IMAGICLE_CA_FILE: path.join(dir, 'not.pem') })).toMatch(/holds no PEM certificate/);
      expect(problemsOf({ IMAGICLE_CA_FILE: pem, IMAGICLE_TLS_INSECURE: 'true' })).toMatch(/set one or the other/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('IMAGICLE_TLS_INSECURE is a boolean', () => {
    expect(loadConfig({ IMAGICLE_TLS_INSECURE: 'true' }).upstreamTls.insecure).toBe(true);
    expect(loadConfig({}).upstreamTls.insecure).toBe(false);
    expect(problemsOf({ IMAGICLE_TLS_INSECURE: 'maybe' })).toMatch(/IMAGICLE_TLS_INSECURE: must be true or false/);
  });
});

describe('overload and slow-upload settings', () => {
  it('defaults: CONCURRENCY = cores, QUEUE_LIMIT 32, LONG_JOB_BYTES 16 MiB, idle 30 s, 32 KiB/s', () => {
    const c = loadConfig({});
    expect(c.queue).toEqual({ concurrency: os.availableParallelism(), queueLimit: 32, longJobBytes: 16 * 1024 * 1024 });
    expect(c.uploads).toMatchObject({ idleTimeoutMs: 30_000, minBytesPerSecond: 32 * 1024 });
  });

  it('the server bound on a whole request is the largest upload at the minimum rate, plus a minute', () => {
    expect(requestTimeoutFor(2 * 1024 ** 3, 32 * 1024)).toBe(65_536_000 + 60_000);
    expect(requestTimeoutFor(1024 * 1024, 1024 * 1024)).toBe(61_000);
    expect(requestTimeoutFor(1024, 0)).toBe(0);
    expect(
      loadConfig({ MAX_UPLOAD_BYTES: '10485760', UPLOAD_MIN_BYTES_PER_SECOND: '1048576' }).uploads.requestTimeoutMs,
    ).toBe(70_000);
  });
});

describe('bounds settings', () => {
  it('defaults: 512 MB per process, expansion 2000, 64 MiB kept free, 10 failed logins a minute', () => {
    expect(loadConfig({}).bounds).toEqual({
      maxMemoryMb: 512,
      maxExpansion: 2000,
      minFreeDiskBytes: 64 * 1024 * 1024,
      authFailLimit: 10,
      authFailWindowMs: 60_000,
    });
  });

  it('FFMPEG_MAX_MEMORY_MB is 0 or at least 256; GATEWAY_ADMIN_KEYS entries are checked like API keys', () => {
    expect(() => loadConfig({ FFMPEG_MAX_MEMORY_MB: '100' })).toThrow(
      /FFMPEG_MAX_MEMORY_MB: must be 0 \(no ceiling\) or at least 256/,
    );
    expect(loadConfig({ FFMPEG_MAX_MEMORY_MB: '0' }).bounds.maxMemoryMb).toBe(0);
    expect(() => loadConfig({ GATEWAY_ADMIN_KEYS: 'short' })).toThrow(
      /GATEWAY_ADMIN_KEYS: key 1 is shorter than 16 characters/,
    );
    const config = loadConfig({
      GATEWAY_ADMIN_KEYS: 'operator-key-0123456789',
      IMAGICLE_USERNAME: 'u',
      IMAGICLE_PASSWORD: 'p',
    });
    expect(config.access.adminKeys).toEqual(['operator-key-0123456789']);
  });
});
