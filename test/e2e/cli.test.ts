/** The CLI shares the core: probe and transcode on real files, and config errors listed at once. */
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fixture } from '../helpers/fixtures.js';
import { decodeFloat, ffprobeFile, rms } from '../helpers/audio.js';

const run = promisify(execFile);
const MAIN = path.resolve('src/main.ts');
const cli = (args: string[], env: Record<string, string> = {}) =>
  run(process.execPath, ['--import', 'tsx', MAIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env } });

describe('imagicle-gateway CLI', () => {
  it('probe prints what the gateway sees', async () => {
    const { stdout } = await cli(['probe', '--json', fixture('raw.g722')]);
    const probed = (JSON.parse(stdout) as { probe: { audio: { codecName: string }; rawHint: { demuxer: string } } })
      .probe;
    expect(probed.audio.codecName).toBe('adpcm_g722');
    expect(probed.rawHint.demuxer).toBe('g722');
  });

  it('transcode writes compliant audio and prints the exact duration', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cli-'));
    try {
      const { stdout } = await cli(['transcode', fixture('speex.spx'), path.join(dir, 'out.any'), '-f', 'mulaw'], {
        TMP_DIR: dir,
      });
      const result = JSON.parse(stdout) as { output: string; duration: string; decision: string };
      expect(result.output).toBe(path.join(dir, 'out.wav'));
      expect(result.decision).toBe('transcode');
      expect(result.duration).toMatch(/^PT\d/);
      expect((await ffprobeFile(result.output)).codec).toBe('pcm_mulaw');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('transcode converts like the gateway: CHANNEL_ORDER=local-right swaps the parties as for an upload', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cli-'));
    try {
      // The local party (left in the source) speaks; the remote party (right) is silent.
      const source = path.join(dir, 'call.flac');
      const leftOnly = 'volume=0.5,pan=stereo|c0=c0|c1=0*c0';
      await run('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'sine=f=440:r=8000:d=2', '-af', leftOnly, '-y', source]);
      const { stdout } = await cli(['transcode', source, path.join(dir, 'out.wav'), '-f', 'alaw'], {
        TMP_DIR: dir,
        CHANNEL_ORDER: 'local-right',
      });
      const result = JSON.parse(stdout) as { output: string };
      const [left, right] = await decodeFloat(result.output, 2);
      // The source carries the local party on the right (CHANNEL_ORDER): the output puts it on the left, as the
      // gateway does, so the tone sent on the source's left is now on the right.
      const [l, r] = [rms(left!, 8000, 0.2, 1.8), rms(right!, 8000, 0.2, 1.8)];
      expect(r).toBeGreaterThan(0.02);
      expect(l).toBeLessThan(r / 100);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a bad configuration, listing every problem, with exit code 2', async () => {
    const error = await cli(['probe', fixture('flac.flac')], { OUTPUT_FORMAT: 'ogg', PORT: 'x' }).catch(
      (e: unknown) => e,
    );
    const { code, stderr } = error as { code: number; stderr: string };
    expect(code).toBe(2);
    expect(stderr).toMatch(/OUTPUT_FORMAT/);
    expect(stderr).toMatch(/PORT/);
  });

  it('refuses to start in production without IMAGICLE_URL', async () => {
    const error = await cli(['serve'], { NODE_ENV: 'production', PORT: '0' }).catch((e: unknown) => e);
    expect((error as { code: number }).code).toBe(2);
    expect((error as { stderr: string }).stderr).toMatch(/IMAGICLE_URL/);
  });
});
