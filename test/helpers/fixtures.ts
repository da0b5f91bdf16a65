import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The files test/fixtures/make-fixtures.sh generates (vitest's globalSetup runs
 * it). Keep this table and the script's verification list in sync.
 */

export const FIXTURES_DIR: string = fileURLToPath(new URL('../fixtures/generated', import.meta.url));

/** Absolute path of a generated fixture; throws if it is not there. */
export function fixture(name: string): string {
  if (name === '' || basename(name) !== name || name === '.' || name === '..') {
    throw new Error(`fixture(): expected a bare file name, got ${JSON.stringify(name)}`);
  }
  const path = join(FIXTURES_DIR, name);
  if (!existsSync(path)) {
    throw new Error(
      `Test fixture ${JSON.stringify(name)} not found in ${FIXTURES_DIR}. ` +
        'Fixtures are made by test/fixtures/make-fixtures.sh: vitest runs it from test/global-setup.ts, ' +
        'or run `npm run fixtures` by hand. If the name is new, add it to the script.',
    );
  }
  return path;
}

/**
 * The signals in the fixtures (the same numbers as in make-fixtures.sh).
 * - talk-spurts: mono, a 440 Hz tone 0.7 s on / 0.3 s off in every second, amplitude 0.5.
 * - left-right: left 440 Hz during the first half then silence; right silence
 *   during the first half then 1000 Hz. A channel swap turns it around.
 * - tones: channel i (0-based) a steady 300 + 200·i Hz, amplitude 0.4.
 * - noise: hand-made random codec frames (AMR, G.729): it decodes, it means nothing.
 */
export const SIGNALS = {
  talkSpurts: { hz: 440, amplitude: 0.5, onSeconds: 0.7, periodSeconds: 1 },
  leftRight: { leftHz: 440, rightHz: 1000, amplitude: 0.5, switchAtFraction: 0.5 },
  tones: { amplitude: 0.4, hzOfChannel: (channel: number): number => 300 + 200 * channel },
} as const;

export type Signal = 'talk-spurts' | 'left-right' | 'tones' | 'noise';

export type FixtureFamily =
  /** WAV Imagicle accepts as it is: PCM 8/16, A-law or u-law, plain header, ≤2 channels, valid sizes. */
  | 'wav'
  /** A compliant WAV except for the size fields (0 or 0xFFFFFFFF, as streaming recorders leave them). */
  | 'wav-streaming'
  /** A WAV container Imagicle refuses: other sample formats/codecs, WAVE_FORMAT_EXTENSIBLE, >2 channels. */
  | 'wav-other'
  | 'mp3'
  | 'ogg'
  | 'webm'
  | 'matroska'
  | 'mp4'
  | 'flac'
  | 'asf'
  | 'amr'
  /** Headerless telephony audio: only the extension says what it is. */
  | 'raw';

export interface AudioFixture {
  readonly name: string;
  readonly family: FixtureFamily;
  /** ffprobe's codec_name of the (first) audio stream. */
  readonly codec: string;
  readonly channels: number;
  /** As ffprobe reports it (Opus always says 48000). */
  readonly sampleRate: number;
  /** Nominal duration; exact for PCM, G.711, AMR and G.729, within a few codec frames for the rest. */
  readonly seconds: number;
  /** Passed through untouched by the gateway: compliant WAV (see 'wav') or MP3, ≤2 channels. */
  readonly compliant: boolean;
  readonly signal: Signal;
  /** Demuxer a headerless file needs (`ffprobe -f …`; PCM ones also `-sample_rate`, `-ch_layout mono`). */
  readonly rawFormat?: string;
  /** The file also has a video track. */
  readonly video?: boolean;
}

export const AUDIO_FIXTURES: ReadonlyArray<AudioFixture> = [
  // compliant: passed through byte for byte
  {
    name: 'pcm16-mono.wav',
    family: 'wav',
    codec: 'pcm_s16le',
    channels: 1,
    sampleRate: 8000,
    seconds: 2,
    compliant: true,
    signal: 'talk-spurts',
  },
  {
    name: 'pcm8-mono.wav',
    family: 'wav',
    codec: 'pcm_u8',
    channels: 1,
    sampleRate: 8000,
    seconds: 2,
    compliant: true,
    signal: 'talk-spurts',
  },
  {
    name: 'alaw-mono.wav',
    family: 'wav',
    codec: 'pcm_alaw',
    channels: 1,
    sampleRate: 8000,
    seconds: 2,
    compliant: true,
    signal: 'talk-spurts',
  },
  {
    name: 'mulaw-mono.wav',
    family: 'wav',
    codec: 'pcm_mulaw',
    channels: 1,
    sampleRate: 8000,
    seconds: 2,
    compliant: true,
    signal: 'talk-spurts',
  },
  {
    name: 'pcm16-stereo.wav',
    family: 'wav',
    codec: 'pcm_s16le',
    channels: 2,
    sampleRate: 8000,
    seconds: 2,
    compliant: true,
    signal: 'left-right',
  },
  {
    name: 'mp3-mono.mp3',
    family: 'mp3',
    codec: 'mp3',
    channels: 1,
    sampleRate: 8000,
    seconds: 2,
    compliant: true,
    signal: 'talk-spurts',
  },
  {
    name: 'mp3-stereo.mp3',
    family: 'mp3',
    codec: 'mp3',
    channels: 2,
    sampleRate: 44100,
    seconds: 2,
    compliant: true,
    signal: 'left-right',
  },
  // streaming recorders: header repair, not re-encoding
  {
    name: 'pcm16-size-zero.wav',
    family: 'wav-streaming',
    codec: 'pcm_s16le',
    channels: 1,
    sampleRate: 8000,
    seconds: 2,
    compliant: false,
    signal: 'talk-spurts',
  },
  {
    name: 'pcm16-size-ffff.wav',
    family: 'wav-streaming',
    codec: 'pcm_s16le',
    channels: 1,
    sampleRate: 8000,
    seconds: 2,
    compliant: false,
    signal: 'talk-spurts',
  },
  // WAV, but not a WAV Imagicle takes
  {
    name: 'pcm24-mono.wav',
    family: 'wav-other',
    codec: 'pcm_s24le',
    channels: 1,
    sampleRate: 8000,
    seconds: 2,
    compliant: false,
    signal: 'talk-spurts',
  },
  {
    name: 'pcm32-mono.wav',
    family: 'wav-other',
    codec: 'pcm_s32le',
    channels: 1,
    sampleRate: 8000,
    seconds: 2,
    compliant: false,
    signal: 'talk-spurts',
  },
  {
    name: 'float32-mono.wav',
    family: 'wav-other',
    codec: 'pcm_f32le',
    channels: 1,
    sampleRate: 8000,
    seconds: 2,
    compliant: false,
    signal: 'talk-spurts',
  },
  {
    name: 'float64-mono.wav',
    family: 'wav-other',
    codec: 'pcm_f64le',
    channels: 1,
    sampleRate: 8000,
    seconds: 1,
    compliant: false,
    signal: 'talk-spurts',
  },
  {
    name: 'extensible-stereo.wav',
    family: 'wav-other',
    codec: 'pcm_s16le',
    channels: 2,
    sampleRate: 8000,
    seconds: 2,
    compliant: false,
    signal: 'left-right',
  },
  {
    name: 'g726-mono.wav',
    family: 'wav-other',
    codec: 'adpcm_g726',
    channels: 1,
    sampleRate: 8000,
    seconds: 2,
    compliant: false,
    signal: 'talk-spurts',
  },
  {
    name: 'gsm-mono.wav',
    family: 'wav-other',
    codec: 'gsm_ms',
    channels: 1,
    sampleRate: 8000,
    seconds: 2,
    compliant: false,
    signal: 'talk-spurts',
  },
  {
    name: 'surround-5.1.wav',
    family: 'wav-other',
    codec: 'pcm_s16le',
    channels: 6,
    sampleRate: 8000,
    seconds: 1,
    compliant: false,
    signal: 'tones',
  },
  {
    name: 'pcm16-4ch.wav',
    family: 'wav-other',
    codec: 'pcm_s16le',
    channels: 4,
    sampleRate: 8000,
    seconds: 1,
    compliant: false,
    signal: 'tones',
  },
  // other containers and codecs
  {
    name: 'opus-stereo.opus',
    family: 'ogg',
    codec: 'opus',
    channels: 2,
    sampleRate: 48000,
    seconds: 2,
    compliant: false,
    signal: 'left-right',
  },
  {
    name: 'vorbis.ogg',
    family: 'ogg',
    codec: 'vorbis',
    channels: 1,
    sampleRate: 8000,
    seconds: 2,
    compliant: false,
    signal: 'talk-spurts',
  },
  {
    name: 'speex.spx',
    family: 'ogg',
    codec: 'speex',
    channels: 1,
    sampleRate: 8000,
    seconds: 2,
    compliant: false,
    signal: 'talk-spurts',
  },
  {
    name: 'webm-opus.webm',
    family: 'webm',
    codec: 'opus',
    channels: 1,
    sampleRate: 48000,
    seconds: 2,
    compliant: false,
    signal: 'talk-spurts',
  },
  {
    name: 'matroska.mka',
    family: 'matroska',
    codec: 'pcm_s16le',
    channels: 1,
    sampleRate: 8000,
    seconds: 2,
    compliant: false,
    signal: 'talk-spurts',
  },
  {
    name: 'aac.m4a',
    family: 'mp4',
    codec: 'aac',
    channels: 1,
    sampleRate: 8000,
    seconds: 2,
    compliant: false,
    signal: 'talk-spurts',
  },
  {
    name: 'flac.flac',
    family: 'flac',
    codec: 'flac',
    channels: 1,
    sampleRate: 8000,
    seconds: 2,
    compliant: false,
    signal: 'talk-spurts',
  },
  {
    name: 'wma.wma',
    family: 'asf',
    codec: 'wmav2',
    channels: 1,
    sampleRate: 16000,
    seconds: 2,
    compliant: false,
    signal: 'talk-spurts',
  },
  {
    name: 'video.mp4',
    family: 'mp4',
    codec: 'aac',
    channels: 1,
    sampleRate: 8000,
    seconds: 2,
    compliant: false,
    signal: 'talk-spurts',
    video: true,
  },
  {
    name: 'video.mkv',
    family: 'matroska',
    codec: 'opus',
    channels: 1,
    sampleRate: 48000,
    seconds: 2,
    compliant: false,
    signal: 'talk-spurts',
    video: true,
  },
  // AMR, hand-made (no encoder in Debian's ffmpeg)
  {
    name: 'amr-nb.amr',
    family: 'amr',
    codec: 'amr_nb',
    channels: 1,
    sampleRate: 8000,
    seconds: 2,
    compliant: false,
    signal: 'noise',
  },
  {
    name: 'amr-wb.awb',
    family: 'amr',
    codec: 'amr_wb',
    channels: 1,
    sampleRate: 16000,
    seconds: 2,
    compliant: false,
    signal: 'noise',
  },
  // headerless telephony files
  {
    name: 'raw.gsm',
    family: 'raw',
    codec: 'gsm',
    channels: 1,
    sampleRate: 8000,
    seconds: 2,
    compliant: false,
    signal: 'talk-spurts',
    rawFormat: 'gsm',
  },
  {
    name: 'raw.g722',
    family: 'raw',
    codec: 'adpcm_g722',
    channels: 1,
    sampleRate: 16000,
    seconds: 2,
    compliant: false,
    signal: 'talk-spurts',
    rawFormat: 'g722',
  },
  {
    name: 'raw.g729',
    family: 'raw',
    codec: 'g729',
    channels: 1,
    sampleRate: 8000,
    seconds: 2,
    compliant: false,
    signal: 'noise',
    rawFormat: 'g729',
  },
  {
    name: 'raw.ul',
    family: 'raw',
    codec: 'pcm_mulaw',
    channels: 1,
    sampleRate: 8000,
    seconds: 2,
    compliant: false,
    signal: 'talk-spurts',
    rawFormat: 'mulaw',
  },
  {
    name: 'raw.ulaw',
    family: 'raw',
    codec: 'pcm_mulaw',
    channels: 1,
    sampleRate: 8000,
    seconds: 2,
    compliant: false,
    signal: 'talk-spurts',
    rawFormat: 'mulaw',
  },
  {
    name: 'raw.mu',
    family: 'raw',
    codec: 'pcm_mulaw',
    channels: 1,
    sampleRate: 8000,
    seconds: 2,
    compliant: false,
    signal: 'talk-spurts',
    rawFormat: 'mulaw',
  },
  {
    name: 'raw.al',
    family: 'raw',
    codec: 'pcm_alaw',
    channels: 1,
    sampleRate: 8000,
    seconds: 2,
    compliant: false,
    signal: 'talk-spurts',
    rawFormat: 'alaw',
  },
  {
    name: 'raw.alaw',
    family: 'raw',
    codec: 'pcm_alaw',
    channels: 1,
    sampleRate: 8000,
    seconds: 2,
    compliant: false,
    signal: 'talk-spurts',
    rawFormat: 'alaw',
  },
  {
    name: 'raw.sln',
    family: 'raw',
    codec: 'pcm_s16le',
    channels: 1,
    sampleRate: 8000,
    seconds: 2,
    compliant: false,
    signal: 'talk-spurts',
    rawFormat: 's16le',
  },
  {
    name: 'raw.sln16',
    family: 'raw',
    codec: 'pcm_s16le',
    channels: 1,
    sampleRate: 16000,
    seconds: 2,
    compliant: false,
    signal: 'talk-spurts',
    rawFormat: 's16le',
  },
];

export type NonAudioKind = 'text' | 'image' | 'empty' | 'truncated' | 'garbage' | 'video-only';

export interface NonAudioFixture {
  readonly name: string;
  readonly kind: NonAudioKind;
  readonly description: string;
}

/** Files with no audio ffprobe can read: the gateway must refuse them cleanly. */
export const NON_AUDIO_FIXTURES: ReadonlyArray<NonAudioFixture> = [
  { name: 'not-audio.txt', kind: 'text', description: 'two lines of plain text' },
  { name: 'image.png', kind: 'image', description: 'a 64x48 PNG (lavfi testsrc)' },
  { name: 'empty.wav', kind: 'empty', description: '0 bytes' },
  {
    name: 'truncated.wav',
    kind: 'truncated',
    description: 'the first 30 bytes of pcm16-mono.wav (header cut inside the fmt chunk)',
  },
  { name: 'garbage.mp3', kind: 'garbage', description: '4096 seeded random bytes with no 0xFF, so no MPEG frame sync' },
  { name: 'video-only.mp4', kind: 'video-only', description: 'a 2 s MPEG-4 video with no audio track' },
];
