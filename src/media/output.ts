/** The output formats and channel modes a gateway can be set to (OUTPUT_FORMAT, CHANNELS). */
export const OUTPUT_FORMATS = ['pcm16', 'pcm8', 'alaw', 'mulaw', 'mp3'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];
export const CHANNEL_MODES = ['keep', 'mono', 'stereo'] as const;
export type ChannelMode = (typeof CHANNEL_MODES)[number];
