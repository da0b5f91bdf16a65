/**
 * A probe without ffprobe for input Imagicle already accepts: a WAV with a
 * plain PCM 8/16, A-law or u-law header, or an MPEG layer III stream. Our own
 * parsers read these exactly, and pass-through never decodes them, so a
 * process start (the largest fixed cost of a small pass-through) is saved.
 * Anything else, or any doubt, returns undefined and ffprobe decides.
 */
import { open } from 'node:fs/promises';
import type { ProbeResult } from './ffmpeg.js';
import { CONTENT_HEAD_BYTES, rawHintFor, startsWithMpegFrames } from './formats.js';
import { readWavInfo, wavDurationSeconds, type WavInfo } from './wav.js';
import { readMp3Info, type Mp3Info } from './mp3.js';

const WAV_CODECS: Record<string, string> = {
  '1/8': 'pcm_u8',
  '1/16': 'pcm_s16le',
  '6/8': 'pcm_alaw',
  '7/8': 'pcm_mulaw',
};

export interface CompliantProbe {
  probe: ProbeResult;
  wav: WavInfo | null;
  mp3: Mp3Info | null;
}

export async function probeCompliant(filePath: string, extension: string): Promise<CompliantProbe | undefined> {
  const buffer = Buffer.alloc(CONTENT_HEAD_BYTES);
  const fh = await open(filePath, 'r');
  let size: number;
  let head: Buffer;
  try {
    const { bytesRead } = await fh.read(buffer, 0, CONTENT_HEAD_BYTES, 0);
    head = buffer.subarray(0, bytesRead);
    size = (await fh.stat()).size;
  } finally {
    await fh.close();
  }
  const magic = head.toString('latin1', 0, 4);
  if (magic === 'RIFF') {
    const wav = await readWavInfo(filePath);
    const codec = wav && wav.plainHeader ? WAV_CODECS[`${wav.formatTag}/${wav.bitsPerSample}`] : undefined;
    if (!wav || !codec || wav.channels > 2 || wav.frames === 0) return undefined;
    const seconds = wavDurationSeconds(wav);
    return {
      probe: synthetic(
        'wav',
        'WAV / WAVE (Waveform Audio)',
        codec,
        wav.sampleRate,
        wav.channels,
        wav.bitsPerSample,
        seconds,
        size,
      ),
      wav,
      mp3: null,
    };
  }
  // A headerless telephony file can start with MPEG-like sync bytes (0xFF is u-law silence): its extension
  // wins unless a run of MP3 frames starts at byte 0 (an MP3 named .ul).
  const frameSync =
    head[0] === 0xff &&
    ((head[1] ?? 0) & 0xe0) === 0xe0 &&
    (rawHintFor(extension) === undefined || startsWithMpegFrames(head));
  if (magic.startsWith('ID3') || frameSync) {
    const mp3 = await readMp3Info(filePath);
    if (!mp3 || mp3.layer !== 3 || mp3.frames === 0) return undefined;
    return {
      probe: synthetic(
        'mp3',
        'MP2/3 (MPEG audio layer 2/3)',
        'mp3',
        mp3.sampleRate,
        mp3.channels,
        0,
        mp3.durationSeconds,
        size,
      ),
      wav: null,
      mp3,
    };
  }
  return undefined;
}

function synthetic(
  formatName: string,
  formatLongName: string,
  codecName: string,
  sampleRate: number,
  channels: number,
  bitsPerSample: number,
  durationSeconds: number,
  sizeBytes: number,
): ProbeResult {
  return {
    formatName,
    formatLongName,
    durationSeconds,
    sizeBytes,
    audio: {
      index: 0,
      codecName,
      codecLongName: codecName,
      sampleFormat: undefined,
      sampleRate,
      channels,
      channelLayout: channels === 1 ? 'mono' : 'stereo',
      bitsPerSample,
      durationSeconds,
      bitRate: undefined,
    },
    audioStreamCount: 1,
    hasVideo: false,
    rawHint: undefined,
  };
}
