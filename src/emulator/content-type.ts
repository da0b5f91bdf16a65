/**
 * The attachment Content-Types Imagicle accepts, and which container each names.
 */
export type Container = 'wav' | 'mp3';

const WAV_TYPES = ['audio/wave', 'audio/vnd.wav', 'audio/vnd.wave', 'audio/wav', 'audio/x-pn-wav', 'audio/x-wav'];
const MP3_TYPES = ['audio/mpeg'];

export const ACCEPTED_CONTENT_TYPES: readonly string[] = [...WAV_TYPES, ...MP3_TYPES];

/** The container a Content-Type names (parameters and case ignored), or null when Imagicle refuses the type. */
export function containerForContentType(contentType: string): Container | null {
  const essence = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  if (WAV_TYPES.includes(essence)) return 'wav';
  if (MP3_TYPES.includes(essence)) return 'mp3';
  return null;
}
