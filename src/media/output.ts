/** The output formats and channel modes a gateway can be set to (OUTPUT_FORMAT, CHANNELS). */
export const OUTPUT_FORMATS = ['pcm16', 'pcm8', 'alaw', 'mulaw', 'mp3'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];
export const CHANNEL_MODES = ['keep', 'mono', 'stereo'] as const;
export type ChannelMode = (typeof CHANNEL_MODES)[number];
/** The MPEG layer III bitrates an encoder can be set to (MP3_BITRATE_KBPS), in kbit/s. */
export const MP3_BITRATES = [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320] as const;
