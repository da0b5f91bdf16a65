/**
 * What ffmpeg may open: the demuxers allowed for untrusted input, and the
 * headerless telephony formats recognised by their file extension.
 */
import path from 'node:path';
import { parseMp3FrameHeader } from './mp3-frame.js';

/**
 * Demuxers that carry audio and cannot reference other files or URLs.
 * Deliberately absent: hls, dash, concat, image2, lavfi, sdp, rtsp, tee,
 * avi (its GAB2 subtitles can embed a playlist), and every raw demuxer
 * (those are only allowed when the extension asks for them).
 */
export const AUTODETECT_DEMUXERS = [
  'wav',
  'w64',
  'mp3',
  'ogg',
  'matroska',
  'mov',
  'flac',
  'asf',
  'amr',
  'amrnb',
  'amrwb',
  'aac',
  'ac3',
  'eac3',
  'aiff',
  'au',
  'caf',
  'voc',
  'wv',
  'ape',
  'mpegts',
  'mpeg',
  'ilbc',
  'wsaud',
] as const;

export interface RawHint {
  /** ffmpeg demuxer name. */
  demuxer: string;
  /** Demuxer options for headerless PCM (sample rate and layout are not in the file). */
  options: Record<string, string>;
  description: string;
  /**
   * A decoder forced on the demuxer's packets (ffmpeg only; ffprobe cannot):
   * headerless codecs ffmpeg has no demuxer for, read as bytes by `u8`.
   */
  decoder?: string;
  /** Decoded samples per input byte, for the exact duration of a forced-decoder input. */
  samplesPerByte?: number;
}

/** The classic Dialogic sample rate; VOX_SAMPLE_RATE or a request's inputSampleRate says otherwise. */
const DEFAULT_VOX_SAMPLE_RATE = 6000;

/**
 * Dialogic/OKI ADPCM (.vox): 4-bit samples, two per byte, no header. ffmpeg's
 * adpcm_ima_oki decodes it sample for sample like sox's `-t vox`.
 */
function voxHint(sampleRate: number): RawHint {
  return {
    demuxer: 'u8',
    options: { sample_rate: String(sampleRate), ch_layout: 'mono' },
    decoder: 'adpcm_ima_oki',
    samplesPerByte: 2,
    description: `raw Dialogic VOX (OKI ADPCM, ${sampleRate} Hz)`,
  };
}

const pcm = (demuxer: string, rate: number, description: string): RawHint => ({
  demuxer,
  options: { sample_rate: String(rate), ch_layout: 'mono' },
  description,
});

/** Extension (lower case, no dot) to the headerless format it names. */
export const RAW_HINTS: Readonly<Record<string, RawHint>> = {
  gsm: { demuxer: 'gsm', options: {}, description: 'raw GSM 06.10' },
  g722: { demuxer: 'g722', options: {}, description: 'raw G.722' },
  g729: { demuxer: 'g729', options: {}, description: 'raw G.729' },
  ul: pcm('mulaw', 8000, 'raw G.711 u-law'),
  ulaw: pcm('mulaw', 8000, 'raw G.711 u-law'),
  mu: pcm('mulaw', 8000, 'raw G.711 u-law'),
  pcmu: pcm('mulaw', 8000, 'raw G.711 u-law'),
  al: pcm('alaw', 8000, 'raw G.711 A-law'),
  alaw: pcm('alaw', 8000, 'raw G.711 A-law'),
  pcma: pcm('alaw', 8000, 'raw G.711 A-law'),
  sln: pcm('s16le', 8000, 'raw signed linear 16-bit 8 kHz'),
  raw: pcm('s16le', 8000, 'raw signed linear 16-bit 8 kHz'),
  sln12: pcm('s16le', 12000, 'raw signed linear 16-bit 12 kHz'),
  sln16: pcm('s16le', 16000, 'raw signed linear 16-bit 16 kHz'),
  sln24: pcm('s16le', 24000, 'raw signed linear 16-bit 24 kHz'),
  sln32: pcm('s16le', 32000, 'raw signed linear 16-bit 32 kHz'),
  sln44: pcm('s16le', 44100, 'raw signed linear 16-bit 44.1 kHz'),
  sln48: pcm('s16le', 48000, 'raw signed linear 16-bit 48 kHz'),
};

/** Known extensions kept on the job's input file so the hint survives; anything else is dropped. */
export function rawHintFor(extension: string, voxSampleRate = DEFAULT_VOX_SAMPLE_RATE): RawHint | undefined {
  const name = extension.toLowerCase().replace(/^\./, '');
  if (name === 'vox') return voxHint(voxSampleRate);
  return RAW_HINTS[name];
}

/** Magic numbers of self-describing files, so a WAV named `.ul` is not decoded as u-law noise. */
const MAGICS: ReadonlyArray<{ offset: number; bytes: string }> = [
  { offset: 0, bytes: 'RIFF' },
  { offset: 0, bytes: 'RF64' },
  { offset: 0, bytes: 'ID3' },
  { offset: 0, bytes: 'OggS' },
  { offset: 0, bytes: 'fLaC' },
  { offset: 0, bytes: '#!AMR' },
  { offset: 4, bytes: 'ftyp' },
  { offset: 0, bytes: '\x1aE\xdf\xa3' },
  { offset: 0, bytes: '0&\xb2u' },
  { offset: 0, bytes: 'FORM' },
  { offset: 0, bytes: '.snd' },
  { offset: 0, bytes: 'caff' },
];

function hasKnownMagic(head: Buffer): boolean {
  return MAGICS.some(({ offset, bytes }) =>
    head.subarray(offset, offset + bytes.length).equals(Buffer.from(bytes, 'latin1')),
  );
}

/** Bytes read from the start of a file to judge its content before its extension. */
export const CONTENT_HEAD_BYTES = 16 * 1024;
/** MPEG audio frames that must chain from byte 0 before a "raw" file is taken for an MP3. */
const MP3_RUN_FRAMES = 4;

/**
 * Whether the file starts with a run of MPEG audio frames of one shape. u-law
 * silence (0xFF bytes) never parses as a frame header (bitrate index 15), and
 * random codec bytes almost never chain four times.
 */
export function startsWithMpegFrames(head: Buffer): boolean {
  const first = parseMp3FrameHeader(head, 0);
  if (first === null) return false;
  let at = 0;
  for (let frame = 0; frame < MP3_RUN_FRAMES; frame += 1) {
    const header = parseMp3FrameHeader(head, at);
    const sameShape =
      header !== null &&
      header.version === first.version &&
      header.layer === first.layer &&
      header.sampleRate === first.sampleRate;
    if (!sameShape) return false;
    at += header.frameBytes;
    if (at >= head.length) return frame >= 1;
  }
  return true;
}

/** A headerless extension is believed only when the bytes are not a real container or an MP3. */
export function contentOverridesExtension(head: Buffer): boolean {
  return hasKnownMagic(head) || startsWithMpegFrames(head);
}

const EXTENSION_RE = /^[a-z0-9]{1,10}$/;

/** A file name's extension as the format hints read it: lower case, 1–10 letters or digits; '' otherwise. */
export function extensionOf(filename: string | undefined): string {
  if (!filename) return '';
  const ext = path
    .extname(filename.split(/[\\/]/).pop() ?? '')
    .slice(1)
    .toLowerCase();
  return EXTENSION_RE.test(ext) ? ext : '';
}
