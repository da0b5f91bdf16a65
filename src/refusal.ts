/**
 * The precise reason an input was refused, for the metrics: `BAD_AUDIO`
 * covers an empty file, a text file, a 13-hour call and a decoder bomb alike,
 * and an operator needs to tell them apart. Read from the error's code and
 * message (every refusal names its cause in its message); a fixed list of
 * values, so the label's cardinality stays bounded.
 */
export type RefusalReason =
  | 'metadata'
  | 'empty'
  | 'truncated'
  | 'not_audio'
  | 'no_audio'
  | 'unsupported'
  | 'undecodable'
  | 'bad_header'
  | 'too_long'
  | 'lying_header'
  | 'too_many_channels'
  | 'too_much_memory'
  | 'decode_timeout'
  | 'upload_too_large'
  | 'expansion'
  | 'oversize'
  | 'disk'
  | 'other';

/** First match wins: the more specific messages come first. */
const BY_MESSAGE: readonly [RegExp, RefusalReason][] = [
  [/attachment is empty/i, 'empty'],
  [/empty or truncated|truncated/i, 'truncated'],
  [/decodes to far more than/i, 'lying_header'],
  [/more than the limit of \d+ seconds|lasts .* more than the limit/i, 'too_long'],
  [/channels; at most/i, 'too_many_channels'],
  [/more memory than allowed/i, 'too_much_memory'],
  [/not a real sample rate/i, 'bad_header'],
  [/not audio|no known audio format|not an? (MP3|WAV)/i, 'not_audio'],
  [/no audio (stream|track|samples|frame)|holds no audio|no usable sample rate/i, 'no_audio'],
  [/playlist or script|was recognised as/i, 'unsupported'],
  [/cannot be decoded|cannot be read/i, 'undecodable'],
  [/not accepted|unsupported/i, 'unsupported'],
];

export function refusalReason(error: { code: string; message: string }): RefusalReason {
  switch (error.code) {
    case 'BAD_METADATA':
      return 'metadata';
    case 'PROCESS_TIMEOUT':
      return 'decode_timeout';
    case 'TOO_LARGE':
      if (/MAX_EXPANSION/.test(error.message)) return 'expansion';
      if (/OVERSIZE=reject/.test(error.message)) return 'oversize';
      if (/of disk/.test(error.message)) return 'disk';
      return 'upload_too_large';
  }
  return BY_MESSAGE.find(([re]) => re.test(error.message))?.[1] ?? 'other';
}
