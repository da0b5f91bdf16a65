/**
 * A probe without ffprobe for the inputs met most often, read exactly by our
 * own parsers: WAV with plain integer PCM (8/16/24/32-bit), IEEE float
 * (32/64-bit), A-law or u-law samples, in a plain or a standard
 * WAVE_FORMAT_EXTENSIBLE header; an MPEG layer III stream; and a plain Ogg Opus
 * file. Every field is the one ffprobe reports for the same file (the tests
 * compare them on generated files), so the plan does not change; only a
 * process start (about 60 ms of CPU, a quarter of transcoding a 3-minute
 * Opus call) is saved. Anything else, or any doubt, returns undefined and
 * ffprobe decides.
 */
import { open } from 'node:fs/promises';
import type { AudioStreamInfo, ProbeResult } from './ffprobe.js';
import { CONTENT_HEAD_BYTES, rawHintFor, startsWithMpegFrames } from './formats.js';
import { readOggOpusInfo, OPUS_RATE } from './ogg-opus.js';
import { bytesPerSampleOf, readWavInfo, wavDurationSeconds, WAVE_FORMAT_EXTENSIBLE, type WavInfo } from './wav.js';
import { readMp3Info, type Mp3Info } from './mp3.js';

interface WavCodec {
  name: string;
  longName: string;
  sampleFormat: string;
}

/** ffmpeg's decoder for a WAV format tag and sample size: `${tag}/${bitsPerSample}`. */
const WAV_CODECS: Readonly<Record<string, WavCodec>> = {
  '1/8': { name: 'pcm_u8', longName: 'PCM unsigned 8-bit', sampleFormat: 'u8' },
  '1/16': { name: 'pcm_s16le', longName: 'PCM signed 16-bit little-endian', sampleFormat: 's16' },
  '1/24': { name: 'pcm_s24le', longName: 'PCM signed 24-bit little-endian', sampleFormat: 's32' },
  '1/32': { name: 'pcm_s32le', longName: 'PCM signed 32-bit little-endian', sampleFormat: 's32' },
  '3/32': { name: 'pcm_f32le', longName: 'PCM 32-bit floating point little-endian', sampleFormat: 'flt' },
  '3/64': { name: 'pcm_f64le', longName: 'PCM 64-bit floating point little-endian', sampleFormat: 'dbl' },
  '6/8': { name: 'pcm_alaw', longName: 'PCM A-law / G.711 A-law', sampleFormat: 's16' },
  '7/8': { name: 'pcm_mulaw', longName: 'PCM mu-law / G.711 mu-law', sampleFormat: 's16' },
};

/** The channel masks whose ffmpeg layout is "mono" (front centre) and "stereo" (front left and right). */
const LAYOUT_OF_MASK: Readonly<Record<number, string>> = { 0x4: 'mono', 0x3: 'stereo' };

/** Above this ffmpeg cannot open the file: inspectAudio says so, after ffprobe (unchanged). */
const MAX_PLAUSIBLE_RATE = 768_000;

export interface FastProbe {
  probe: ProbeResult;
  wav: WavInfo | null;
  mp3: Mp3Info | null;
}

export async function probeWithoutFfprobe(filePath: string, extension: string): Promise<FastProbe | undefined> {
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
  if (magic === 'RIFF') return probeWav(filePath, size);
  if (magic === 'OggS') return probeOggOpus(filePath);
  // A headerless telephony file can start with MPEG-like sync bytes (0xFF is u-law silence): its extension
  // wins unless a run of MP3 frames starts at byte 0 (an MP3 named .ul).
  const frameSync =
    head[0] === 0xff &&
    ((head[1] ?? 0) & 0xe0) === 0xe0 &&
    (rawHintFor(extension) === undefined || startsWithMpegFrames(head));
  if (magic.startsWith('ID3') || frameSync) {
    const mp3 = await readMp3Info(filePath);
    if (!mp3 || mp3.layer !== 3 || mp3.frames === 0) return undefined;
    const probe = synthetic({
      formatName: 'mp3',
      formatLongName: 'MP2/3 (MPEG audio layer 2/3)',
      codecName: 'mp3',
      codecLongName: 'mp3',
      sampleFormat: undefined,
      sampleRate: mp3.sampleRate,
      channels: mp3.channels,
      channelLayout: mp3.channels === 1 ? 'mono' : 'stereo',
      bitsPerSample: 0,
      durationSeconds: mp3.durationSeconds,
      bitRate: undefined,
      sizeBytes: size,
    });
    return { probe, wav: null, mp3 };
  }
  return undefined;
}

async function probeWav(filePath: string, size: number): Promise<FastProbe | undefined> {
  const wav = await readWavInfo(filePath);
  if (!wav || wav.channels > 2 || wav.frames === 0) return undefined;
  const compliant = wav.plainHeader && (wav.bitsPerSample === 8 || wav.bitsPerSample === 16);
  // Compliant samples in a plain header: passed through or repaired, whatever their sizes and fields say (our
  // parser's reading is the one that counts). Anything else is decoded by ffmpeg, so ffprobe must read it alike.
  if (!compliant && !readsLikeFfmpeg(wav)) return undefined;
  const codec = WAV_CODECS[`${wav.effectiveFormatTag}/${wav.bitsPerSample}`];
  if (!codec) return undefined;
  const channelLayout = wav.extensible ? LAYOUT_OF_MASK[wav.extensible.channelMask] : undefined;
  const probe = synthetic({
    formatName: 'wav',
    formatLongName: 'WAV / WAVE (Waveform Audio)',
    codecName: codec.name,
    codecLongName: codec.longName,
    sampleFormat: codec.sampleFormat,
    sampleRate: wav.sampleRate,
    channels: wav.channels,
    // ffmpeg gives a plain header no layout, and an extensible one the layout of its channel mask.
    channelLayout,
    bitsPerSample: wav.bitsPerSample,
    durationSeconds: wavDurationSeconds(wav),
    bitRate: wav.sampleRate * wav.channels * wav.bitsPerSample,
    sizeBytes: size,
  });
  return { probe, wav, mp3: null };
}

/**
 * A WAV ffmpeg reads as our parser does: consistent sizes (ffmpeg's length
 * comes from the data size), a fmt chunk that agrees with itself and comes
 * first, a real sample rate, and for WAVE_FORMAT_EXTENSIBLE the standard
 * sub-format, all bits valid (ffmpeg picks its decoder by the valid bits) and
 * a mono or stereo channel mask.
 */
function readsLikeFfmpeg(wav: WavInfo): boolean {
  const blockAlign = wav.channels * bytesPerSampleOf(wav.bitsPerSample);
  const selfConsistent =
    wav.sizesConsistent &&
    wav.fmtBeforeData &&
    wav.bitsPerSample % 8 === 0 &&
    wav.blockAlign === blockAlign &&
    wav.byteRate === blockAlign * wav.sampleRate &&
    wav.sampleRate <= MAX_PLAUSIBLE_RATE;
  if (!selfConsistent) return false;
  if (wav.formatTag !== WAVE_FORMAT_EXTENSIBLE) return wav.formatTag === wav.effectiveFormatTag;
  const ext = wav.extensible;
  return (
    ext !== undefined &&
    ext.standardSubFormat &&
    ext.validBitsPerSample === wav.bitsPerSample &&
    LAYOUT_OF_MASK[ext.channelMask] === (wav.channels === 1 ? 'mono' : 'stereo')
  );
}

async function probeOggOpus(filePath: string): Promise<FastProbe | undefined> {
  const opus = await readOggOpusInfo(filePath);
  if (!opus) return undefined;
  // ffprobe's duration is a whole number of microseconds.
  const durationSeconds = Math.round((opus.durationSamples * 1e6) / OPUS_RATE) / 1e6;
  const probe = synthetic({
    formatName: 'ogg',
    formatLongName: 'Ogg',
    codecName: 'opus',
    codecLongName: 'Opus (Opus Interactive Audio Codec)',
    sampleFormat: 'fltp',
    sampleRate: OPUS_RATE,
    channels: opus.channels,
    channelLayout: opus.channels === 1 ? 'mono' : 'stereo',
    bitsPerSample: 0,
    durationSeconds,
    bitRate: undefined,
    sizeBytes: opus.fileSize,
  });
  return { probe, wav: null, mp3: null };
}

/** One audio stream's fields (its index is 0, its duration the file's) and the file's. */
type SyntheticFields = Omit<AudioStreamInfo, 'index' | 'durationSeconds' | 'declaredPackets'> & {
  formatName: string;
  formatLongName: string;
  durationSeconds: number;
  sizeBytes: number;
};

function synthetic(f: SyntheticFields): ProbeResult {
  const { formatName, formatLongName, durationSeconds, sizeBytes, ...stream } = f;
  return {
    formatName,
    formatLongName,
    durationSeconds,
    sizeBytes,
    audio: { index: 0, ...stream, durationSeconds, declaredPackets: undefined },
    audioStreamCount: 1,
    hasVideo: false,
    rawHint: undefined,
  };
}
