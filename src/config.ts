/**
 * The one place that reads process.env. Every setting is validated by one zod
 * schema; all problems are reported at once, and the result is frozen.
 */
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';

export const OUTPUT_FORMATS = ['pcm16', 'pcm8', 'alaw', 'mulaw', 'mp3'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];
export const CHANNEL_MODES = ['keep', 'mono', 'stereo'] as const;
export type ChannelMode = (typeof CHANNEL_MODES)[number];
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const int = (min: number, max: number) =>
  z.coerce
    .number({ error: 'must be a number' })
    .int({ error: 'must be a whole number' })
    .min(min, { error: `must be at least ${min}` })
    .max(max, { error: `must be at most ${max}` });

const httpUrl = z
  .url({ error: 'must be an http(s) URL, e.g. https://ucx.example.com' })
  .refine((u) => /^https?:\/\//i.test(u), { error: 'must start with http:// or https://' })
  .transform((u) => u.replace(/\/+$/, ''));

const MP3_BITRATES = [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320] as const;

const MP3_SAMPLE_RATES: readonly number[] = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000];

const envSchema = z.object({
  NODE_ENV: z.string().optional(),
  PORT: int(0, 65535).default(8080),
  HOST: z.string().min(1).default('0.0.0.0'),
  IMAGICLE_URL: httpUrl.optional(),
  IMAGICLE_USERNAME: z.string().min(1).optional(),
  IMAGICLE_PASSWORD: z.string().optional(),
  IMAGICLE_TIMEOUT_MS: int(1000, 3_600_000).default(120_000),
  OUTPUT_FORMAT: z.enum(OUTPUT_FORMATS, { error: `must be one of ${OUTPUT_FORMATS.join(', ')}` }).default('pcm16'),
  OUTPUT_SAMPLE_RATE: int(8000, 48000).default(8000),
  CHANNELS: z.enum(CHANNEL_MODES, { error: `must be one of ${CHANNEL_MODES.join(', ')}` }).default('keep'),
  MP3_BITRATE: z.coerce
    .number()
    .refine((v) => (MP3_BITRATES as readonly number[]).includes(v), {
      error: `must be one of ${MP3_BITRATES.join(', ')} (kbit/s)`,
    })
    .default(32),
  MAX_PART_BYTES: int(64 * 1024, 268_435_456 * 4).default(268_435_456),
  MAX_UPLOAD_BYTES: int(1024, Number.MAX_SAFE_INTEGER).default(2 * 1024 ** 3),
  MAX_DURATION_SECONDS: int(1, 7 * 86_400).default(43_200),
  MAX_CHANNELS_IN: int(1, 64).default(16),
  FFMPEG_PATH: z.string().min(1).optional(),
  FFPROBE_PATH: z.string().min(1).optional(),
  FFMPEG_TIMEOUT_MS: int(1000, 24 * 3_600_000).default(3_600_000),
  TMP_DIR: z.string().min(1).default(path.join(os.tmpdir(), 'imagicle-gateway')),
  EMULATOR_DIR: z.string().min(1).default(path.join(os.tmpdir(), 'imagicle-gateway-emulator')),
  EMULATOR_PORT: int(0, 65535).default(8081),
  SHUTDOWN_GRACE_MS: int(0, 3_600_000).default(30_000),
  LOG_LEVEL: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
});

export type Env = z.infer<typeof envSchema>;

export interface Config {
  readonly production: boolean;
  readonly port: number;
  readonly host: string;
  /** Base URL of the Imagicle server, without trailing slash; undefined means the embedded emulator. */
  readonly imagicleUrl: string | undefined;
  readonly imagicleCredentials: { readonly username: string; readonly password: string } | undefined;
  readonly upstreamTimeoutMs: number;
  readonly output: {
    readonly format: OutputFormat;
    readonly sampleRate: number;
    readonly channels: ChannelMode;
    readonly mp3BitrateKbps: number;
  };
  readonly limits: {
    readonly maxPartBytes: number;
    readonly maxUploadBytes: number;
    readonly maxDurationSeconds: number;
    readonly maxChannelsIn: number;
    readonly processTimeoutMs: number;
  };
  readonly ffmpegPath: string | undefined;
  readonly ffprobePath: string | undefined;
  readonly tmpDir: string;
  readonly emulatorDir: string;
  readonly emulatorPort: number;
  readonly shutdownGraceMs: number;
  readonly logLevel: (typeof LOG_LEVELS)[number];
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Builds the configuration from an environment (process.env by default) plus overrides (CLI flags). */
export function loadConfig(
  env: Record<string, string | undefined> = process.env,
  overrides: Partial<Record<keyof Env, string>> = {},
): Config {
  const source: Record<string, string | undefined> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const value = overrides[key as keyof Env] ?? env[key];
    // An empty variable means "unset", as in most twelve-factor tools.
    source[key] = value === undefined || value.trim() === '' ? undefined : value.trim();
  }
  const parsed = envSchema.safeParse(source);
  const problems: string[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(`${issue.path.join('.') || '(env)'}: ${issue.message}`);
  }
  if (parsed.success) {
    const e = parsed.data;
    const production = e.NODE_ENV === 'production';
    if (production && !e.IMAGICLE_URL) {
      problems.push('IMAGICLE_URL: required when NODE_ENV=production (the embedded emulator is for development only)');
    }
    if (e.OUTPUT_FORMAT === 'mp3' && !MP3_SAMPLE_RATES.includes(e.OUTPUT_SAMPLE_RATE)) {
      problems.push(`OUTPUT_SAMPLE_RATE: MP3 supports ${MP3_SAMPLE_RATES.join(', ')} Hz`);
    }
    if ((e.IMAGICLE_USERNAME === undefined) !== (e.IMAGICLE_PASSWORD === undefined)) {
      problems.push('IMAGICLE_USERNAME and IMAGICLE_PASSWORD: set both or neither');
    }
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  const e = parsed.data;
  const config: Config = {
    production: e.NODE_ENV === 'production',
    port: e.PORT,
    host: e.HOST,
    imagicleUrl: e.IMAGICLE_URL,
    imagicleCredentials:
      e.IMAGICLE_USERNAME !== undefined && e.IMAGICLE_PASSWORD !== undefined
        ? { username: e.IMAGICLE_USERNAME, password: e.IMAGICLE_PASSWORD }
        : undefined,
    upstreamTimeoutMs: e.IMAGICLE_TIMEOUT_MS,
    output: {
      format: e.OUTPUT_FORMAT,
      sampleRate: e.OUTPUT_SAMPLE_RATE,
      channels: e.CHANNELS,
      mp3BitrateKbps: e.MP3_BITRATE,
    },
    limits: {
      maxPartBytes: e.MAX_PART_BYTES,
      maxUploadBytes: e.MAX_UPLOAD_BYTES,
      maxDurationSeconds: e.MAX_DURATION_SECONDS,
      maxChannelsIn: e.MAX_CHANNELS_IN,
      processTimeoutMs: e.FFMPEG_TIMEOUT_MS,
    },
    ffmpegPath: e.FFMPEG_PATH,
    ffprobePath: e.FFPROBE_PATH,
    tmpDir: path.resolve(e.TMP_DIR),
    emulatorDir: path.resolve(e.EMULATOR_DIR),
    emulatorPort: e.EMULATOR_PORT,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    logLevel: e.LOG_LEVEL,
  };
  return deepFreeze(config);
}

function deepFreeze<T extends object>(value: T): T {
  for (const v of Object.values(value)) if (v && typeof v === 'object') deepFreeze(v as object);
  return Object.freeze(value);
}
