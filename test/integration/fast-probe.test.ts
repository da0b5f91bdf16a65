import { describe, expect, it } from 'vitest';
import { probeCompliant } from '../../src/media/fast-probe.js';
import { fixture } from '../helpers/fixtures.js';

describe('probeCompliant (pass-through without ffprobe)', () => {
  it.each([
    ['pcm16-mono.wav', 'wav', 'pcm_s16le', 1],
    ['pcm8-mono.wav', 'wav', 'pcm_u8', 1],
    ['alaw-mono.wav', 'wav', 'pcm_alaw', 1],
    ['mulaw-mono.wav', 'wav', 'pcm_mulaw', 1],
    ['pcm16-stereo.wav', 'wav', 'pcm_s16le', 2],
    ['mp3-stereo.mp3', 'mp3', 'mp3', 2],
  ])('%s is read by our parsers', async (name, format, codec, channels) => {
    const result = await probeCompliant(fixture(name), name.split('.').pop()!);
    expect(result?.probe).toMatchObject({ formatName: format, audio: { codecName: codec, channels } });
  });

  it.each([
    'pcm24-mono.wav',
    'float32-mono.wav',
    'extensible-stereo.wav',
    'surround-5.1.wav',
    'gsm-mono.wav',
    'opus-stereo.opus',
    'raw.ul',
    'raw.mu',
    'empty.wav',
    'garbage.mp3',
    'not-audio.txt',
  ])('%s is left to ffprobe', async (name) => {
    expect(await probeCompliant(fixture(name), name.split('.').pop()!)).toBeUndefined();
  });
});
