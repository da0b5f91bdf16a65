/**
 * The one place that reads process.env. Every setting is validated by one zod
 * schema; all problems are reported at once, and the result is frozen.
 */
import os from 'node:os';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseApiKeys, parseBasicUsers, type AccessSettings } from './access.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from './delivery/retry.js';
import { parseInterval } from './delivery/interval.js';
import { DEDUP_ANSWERS, type DedupAnswer } from './delivery/dedup.js';
import { DTMF_MASKS } from './media/dtmf-mask.js';
import { DEFAULT_DTMF_POLICY, DTMF_MODES, type DtmfPolicy } from './media/dtmf-policy.js';
import { LEVEL_MODES, type LevelPolicy } from './media/level.js';
import { fileDoorProblems, SIDECAR_MODES, type SidecarMode } from './import/settings.js';
import { distributedProblems, hardeningProblems } from './config-checks.js';
import { parseTrustProxy, type TrustProxy } from './http/trust-proxy.js';
import { RECONCILE_MODES, type ReconcileMode } from './imagicle/reconcile.js';
import { networksOf } from './webhooks/address.js';
import { DEFAULT_WEBHOOK_SETTINGS, listOf, parseWebhooks, type WebhookSettings } from './webhooks/settings.js';

// The domain enums live with their domain; re-exported here for the callers that read them with the config.
import { CHANNEL_MODES, MP3_BITRATES, OUTPUT_FORMATS, type ChannelMode, type OutputFormat } from './media/output.js';
import { CHANNEL_ORDERS, SOURCE_PROFILES, type ChannelOrder, type SourceProfile } from './media/channels.js';
import { OVERSIZE_POLICIES, type OversizePolicy } from './pipeline/fit.js';
import { STEREO_CHECKS, type StereoCheck } from './pipeline/stereo-report.js';
import { TRUNCATED_POLICIES, type TruncatedPolicy } from './pipeline/truncation.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const int = (min: number, max: number) =>
  z.coerce
    .number({ error: 'must be a number' })
    .int({ error: 'must be a whole number' })
    .min(min, { error: `must be at least ${min}` })
    .max(max, { error: `must be at most ${max}` });

/** A level or a gain in dB (decimals allowed). */
const decibels = (min: number, max: number) =>
  z.coerce
    .number({ error: 'must be a number' })
    .min(min, { error: `must be at least ${min}` })
    .max(max, { error: `must be at most ${max}` });

const httpUrl = z
  .url({ error: 'must be an http(s) URL, e.g. https://ucx.example.com' })
  .refine((u) => /^https?:\/\//i.test(u), { error: 'must start with http:// or https://' })
  .transform((u) => u.replace(/\/+$/, ''));

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

/** A duration: seconds, or a number with ms, s, m, h or d (delivery/interval.ts); parsed to milliseconds. */
const interval = z
  .string()
  .refine((v) => parseInterval(v) !== undefined, {
    error: 'must be a duration: seconds, or a number with ms, s, m, h or d (e.g. 3d, 90m)',
  })
  .transform((v) => parseInterval(v)!);

/** all: receives and delivers; api: receives and enqueues; worker: renders and delivers (distributed mode only). */
const ROLES = ['all', 'api', 'worker'] as const;
type Role = (typeof ROLES)[number];

const DELIVERY_MODES = ['wait', 'sync'] as const;
type DeliveryMode = (typeof DELIVERY_MODES)[number];

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
  OVERSIZE: z.enum(OVERSIZE_POLICIES, { error: `must be one of ${OVERSIZE_POLICIES.join(', ')}` }).default('split'),
  COMPRESS_ORDER: z
    .string()
    .transform((v) =>
      v
        .split(',')
        .map((f) => f.trim())
        .filter(Boolean),
    )
    .pipe(
      z
        .array(z.enum(OUTPUT_FORMATS, { error: `each entry must be one of ${OUTPUT_FORMATS.join(', ')}` }))
        .min(1, { error: 'must name at least one format' }),
    )
    .default(['alaw', 'mp3']),
  SPLIT_SILENCE_WINDOW_SECONDS: int(0, 3600).default(30),
  MAX_UPLOAD_BYTES: int(1024, Number.MAX_SAFE_INTEGER).default(2 * 1024 ** 3),
  MAX_DURATION_SECONDS: int(1, 7 * 86_400).default(43_200),
  MAX_CHANNELS_IN: int(1, 64).default(16),
  VOX_SAMPLE_RATE: int(4000, 48000).default(6000),
  CHANNEL_ORDER: z.enum(CHANNEL_ORDERS, { error: `must be one of ${CHANNEL_ORDERS.join(', ')}` }).default('local-left'),
  SOURCE_PROFILE: z.enum(SOURCE_PROFILES, { error: `must be one of ${SOURCE_PROFILES.join(', ')}` }).default('generic'),
  STEREO_CHECK: z.enum(STEREO_CHECKS, { error: `must be one of ${STEREO_CHECKS.join(', ')}` }).default('warn'),
  FFMPEG_PATH: z.string().min(1).optional(),
  FFPROBE_PATH: z.string().min(1).optional(),
  FFMPEG_TIMEOUT_MS: int(1000, 24 * 3_600_000).default(3_600_000),
  // Unset: per instance, named by the port (defaultTmpDir, defaultEmulatorDir), so two gateways never share them.
  TMP_DIR: z.string().min(1).optional(),
  EMULATOR_DIR: z.string().min(1).optional(),
  EMULATOR_PORT: int(0, 65535).default(8081),
  SHUTDOWN_GRACE_MS: int(0, 3_600_000).default(30_000),
  LOG_LEVEL: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
  // Hardening (docs/security.md): callers, upstream TLS, overload, slow uploads.
  GATEWAY_API_KEYS: z.string().optional(),
  GATEWAY_BASIC_USERS: z.string().optional(),
  GATEWAY_ADMIN_KEYS: z.string().optional(),
  ALLOW_ANONYMOUS: bool.default(false),
  IMAGICLE_CA_FILE: z.string().min(1).optional(),
  IMAGICLE_TLS_INSECURE: bool.default(false),
  CONCURRENCY: int(1, 1024).default(os.availableParallelism()),
  QUEUE_LIMIT: int(0, 100_000).default(32),
  LONG_JOB_BYTES: int(1024, Number.MAX_SAFE_INTEGER).default(16 * 1024 * 1024),
  UPLOAD_IDLE_TIMEOUT_MS: int(1000, 3_600_000).default(30_000),
  UPLOAD_MIN_BYTES_PER_SECOND: int(0, 1024 ** 3).default(32 * 1024),
  // Observability (docs/observability.md): /metrics without credentials, for scrapers that cannot send one.
  METRICS_PUBLIC: bool.default(false),
  WAVEFORMS_ON_DELIVERY: bool.default(true),
  // Delivery (docs/delivery.md): upstream timeouts, retries, the spool, duplicates.
  IMAGICLE_CONNECT_TIMEOUT_MS: int(100, 600_000).default(10_000),
  IMAGICLE_MIN_BYTES_PER_SECOND: int(0, 1024 ** 3).default(64 * 1024),
  DELIVERY: z.enum(DELIVERY_MODES, { error: `must be one of ${DELIVERY_MODES.join(', ')}` }).default('wait'),
  RETRY_MAX_ATTEMPTS: int(1, 100).default(DEFAULT_RETRY_POLICY.maxAttempts),
  RETRY_MIN_DELAY_MS: int(0, 3_600_000).default(DEFAULT_RETRY_POLICY.minDelayMs),
  RETRY_MAX_DELAY_MS: int(0, 3_600_000).default(DEFAULT_RETRY_POLICY.maxDelayMs),
  RETRY_MAX_TOTAL_MS: int(0, 24 * 3_600_000).default(DEFAULT_RETRY_POLICY.maxTotalMs),
  RETRY_AMBIGUOUS: bool.default(false),
  SPOOL_DIR: z.string().min(1).default('data/spool'),
  SPOOL_MAX_BYTES: int(1024 * 1024, Number.MAX_SAFE_INTEGER).default(20 * 1024 ** 3),
  SPOOL_MAX_AGE: interval.default(3 * 86_400_000),
  SPOOL_RETRY_MAX_DELAY_MS: int(10, 24 * 3_600_000).default(300_000),
  // Twice the cores: a job's ffmpeg runs wait for one of CONCURRENCY process slots, so the other jobs overlap their
  // uploads, journal writes and Imagicle's answers with conversion (a drain of 600 ran 1.5x faster at 4 than at 2).
  SPOOL_CONCURRENCY: int(1, 64).default(Math.min(64, 2 * os.availableParallelism())),
  DEDUP_WINDOW: interval.default(86_400_000),
  DEDUP_ANSWER: z.enum(DEDUP_ANSWERS, { error: `must be one of ${DEDUP_ANSWERS.join(', ')}` }).default('replay'),
  // Level normalization per channel (docs/level.md).
  LEVEL: z.enum(LEVEL_MODES, { error: `must be one of ${LEVEL_MODES.join(', ')}` }).default('off'),
  LEVEL_TARGET_DBFS: decibels(-40, -6).default(-20),
  LEVEL_MAX_PEAK_DBFS: decibels(-20, 0).default(-1),
  LEVEL_MAX_GAIN_DB: decibels(0, 60).default(30),
  // Distributed mode (docs/scaling.md): a BullMQ queue on Redis, a shared folder, roles.
  QUEUE_URL: z
    .url({ error: 'must be a redis:// or rediss:// URL, e.g. redis://redis:6379/0' })
    .refine((u) => /^rediss?:\/\//i.test(u), { error: 'must start with redis:// or rediss://' })
    .optional(),
  BLOB_DIR: z.string().min(1).optional(),
  ROLE: z.enum(ROLES, { error: `must be one of ${ROLES.join(', ')}` }).default('all'),
  QUEUE_LOCK_MS: int(1000, 600_000).default(30_000),
  // Watched folder (docs/import.md): `serve` watches WATCH_DIR when set; `watch <dir>` takes the same settings as flags.
  WATCH_DIR: z.string().min(1).optional(),
  WATCH_PATTERN: z.string().min(1).optional(),
  WATCH_DEFAULTS: z.string().min(1).optional(),
  WATCH_TIMEZONE: z.string().min(1).default('UTC'),
  WATCH_SIDECAR: z.enum(SIDECAR_MODES, { error: `must be one of ${SIDECAR_MODES.join(', ')}` }).default('optional'),
  WATCH_STABLE_SECONDS: int(1, 86_400).default(5),
  WATCH_POLL_SECONDS: int(1, 3600).default(2),
  // Unset: data/watch-state/<destination> (the Imagicle server and user the files go to: see Config.destination).
  WATCH_STATE_DIR: z.string().min(1).optional(),
  // Bounds on memory, disk and failed logins (docs/security.md, "Bounds").
  // 0 (no ceiling) or at least 256: Debian's ffmpeg maps about 300 MB of shared libraries before it reads a byte.
  FFMPEG_MAX_MEMORY_MB: int(0, 1024 * 1024)
    .refine((v) => v === 0 || v >= 256, { error: 'must be 0 (no ceiling) or at least 256 (ffmpeg needs it)' })
    .default(512),
  MAX_EXPANSION: int(1, 1_000_000).default(2000),
  MIN_FREE_DISK_BYTES: int(0, Number.MAX_SAFE_INTEGER).default(64 * 1024 * 1024),
  AUTH_FAIL_LIMIT: int(0, 1_000_000).default(10),
  AUTH_FAIL_WINDOW: interval.default(60_000),
  TRUST_PROXY: z.string().optional(),
  // Webhooks (issue 23, docs/webhooks.md): endpoints per owner, callbackUrl hosts, private networks, retry bounds.
  WEBHOOKS: z.string().optional(),
  WEBHOOKS_FILE: z.string().min(1).optional(),
  WEBHOOK_ALLOWED_HOSTS: z.string().optional(),
  WEBHOOK_PRIVATE_NETWORKS: z.string().optional(),
  WEBHOOK_MAX_AGE: interval.default(DEFAULT_WEBHOOK_SETTINGS.maxAgeMs),
  WEBHOOK_TIMEOUT_MS: int(100, 600_000).default(DEFAULT_WEBHOOK_SETTINGS.timeoutMs),
  WEBHOOK_CONCURRENCY: int(1, 256).default(DEFAULT_WEBHOOK_SETTINGS.concurrency),
  WEBHOOK_RETRY_MIN_DELAY_MS: int(10, 3_600_000).default(DEFAULT_WEBHOOK_SETTINGS.minDelayMs),
  WEBHOOK_RETRY_MAX_DELAY_MS: int(10, 24 * 3_600_000).default(DEFAULT_WEBHOOK_SETTINGS.maxDelayMs),
  WEBHOOK_HISTORY: interval.default(DEFAULT_WEBHOOK_SETTINGS.historyMs),
  WEBHOOK_PUBLIC_URL: httpUrl.optional(),
  // Issue 22: DTMF (keypad tone) detection and masking (docs/dtmf.md).
  DTMF: z.enum(DTMF_MODES, { error: `must be one of ${DTMF_MODES.join(', ')}` }).default('off'),
  DTMF_GUARD_MS: int(0, 1000).default(DEFAULT_DTMF_POLICY.guardMs),
  DTMF_MASK: z.enum(DTMF_MASKS, { error: `must be one of ${DTMF_MASKS.join(', ')}` }).default('silence'),
  // Issue 20 (docs/security.md): /metrics on a listener of its own, and recordings shorter than they declare.
  METRICS_PORT: int(0, 65535).optional(),
  METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  TRUNCATED: z.enum(TRUNCATED_POLICIES, { error: `must be one of ${TRUNCATED_POLICIES.join(', ')}` }).default('accept'),
  // Issue 25, reconciliation (docs/delivery.md, "Duplicates"): ask Imagicle before sending a part again after an
  // ambiguous attempt; the second look's delay when the first finds nothing.
  RECONCILE: z.enum(RECONCILE_MODES, { error: `must be one of ${RECONCILE_MODES.join(', ')}` }).default('auto'),
  RECONCILE_RECHECK_MS: int(0, 600_000).default(5_000),
});

export type Env = z.infer<typeof envSchema>;

export interface Config {
  readonly production: boolean;
  readonly port: number;
  readonly host: string;
  /** Base URL of the Imagicle server, without trailing slash; undefined means the embedded emulator. */
  readonly imagicleUrl: string | undefined;
  /**
   * Where recordings go, as a short digest of Imagicle's URL (or the embedded emulator's port) and user: the file
   * doors' duplicate keys and default state folders are scoped by it, so that a run towards another server is
   * never mistaken for a duplicate of what went to this one.
   */
  readonly destination: string;
  readonly imagicleCredentials: { readonly username: string; readonly password: string } | undefined;
  readonly upstreamTimeoutMs: number;
  /** Connect timeout, and the slowest upload rate from which each attempt's overall deadline is derived. */
  readonly upstreamConnectTimeoutMs: number;
  readonly upstreamMinBytesPerSecond: number;
  /** How uploads reach Imagicle: retries, the spool, duplicates (docs/delivery.md). */
  readonly delivery: {
    readonly mode: DeliveryMode;
    readonly retry: Readonly<RetryPolicy>;
    readonly spoolDir: string;
    readonly spoolMaxBytes: number;
    readonly spoolMaxAgeMs: number;
    readonly spoolRetryMaxDelayMs: number;
    readonly spoolConcurrency: number;
    readonly dedupWindowMs: number;
    readonly dedupAnswer: DedupAnswer;
  };
  readonly output: {
    readonly format: OutputFormat;
    readonly sampleRate: number;
    readonly channels: ChannelMode;
    readonly mp3BitrateKbps: number;
  };
  readonly oversize: {
    readonly policy: OversizePolicy;
    readonly compressOrder: readonly OutputFormat[];
    readonly silenceWindowSeconds: number;
  };
  readonly limits: {
    readonly maxPartBytes: number;
    readonly maxUploadBytes: number;
    readonly maxDurationSeconds: number;
    readonly maxChannelsIn: number;
    readonly processTimeoutMs: number;
  };
  /** Sample rate of headerless Dialogic VOX input (a request's inputSampleRate overrides it). */
  readonly voxSampleRate: number;
  readonly ffmpegPath: string | undefined;
  readonly ffprobePath: string | undefined;
  readonly tmpDir: string;
  readonly emulatorDir: string;
  readonly emulatorPort: number;
  readonly shutdownGraceMs: number;
  readonly logLevel: (typeof LOG_LEVELS)[number];
  /** Who may call the gateway (GATEWAY_API_KEYS, GATEWAY_BASIC_USERS, ALLOW_ANONYMOUS). */
  readonly access: AccessSettings;
  /** TLS towards Imagicle: a private CA (PEM, read at startup) or no verification at all. */
  readonly upstreamTls: {
    readonly caFile: string | undefined;
    readonly ca: string | undefined;
    readonly insecure: boolean;
  };
  /** ffmpeg/ffprobe processes at once, jobs waiting, and the upload size from which a job is "long". */
  readonly queue: { readonly concurrency: number; readonly queueLimit: number; readonly longJobBytes: number };
  /** Slow or stalled uploads: idle cut-off, minimum average rate, and the server's whole-request bound derived from them. */
  readonly uploads: {
    readonly idleTimeoutMs: number;
    readonly minBytesPerSecond: number;
    readonly requestTimeoutMs: number;
  };
  /** Distributed mode (QUEUE_URL set): the queue, the shared folder for audio, and this process's role. */
  readonly distributed:
    { readonly queueUrl: string; readonly blobDir: string; readonly role: Role; readonly lockMs: number } | undefined;
  /**
   * Bounds: each ffmpeg/ffprobe's memory ceiling (0: none), output bytes per input byte, free space kept on the
   * spool's and TMP_DIR's file systems, and failed logins per address within a window before 429 (0: no limit).
   */
  readonly bounds: {
    readonly maxMemoryMb: number;
    readonly maxExpansion: number;
    readonly minFreeDiskBytes: number;
    readonly authFailLimit: number;
    readonly authFailWindowMs: number;
  };
  /** TRUST_PROXY: the reverse proxies whose X-Forwarded-For names the client (http/trust-proxy.ts). */
  readonly trustProxy: TrustProxy;
  /** Stereo for Voice Analytics: how sources lay out the parties, and what to do with fake stereo. */
  readonly stereo: {
    readonly channelOrder: ChannelOrder;
    readonly sourceProfile: SourceProfile;
    readonly check: StereoCheck;
  };
  /** Level normalization per channel (LEVEL, LEVEL_TARGET_DBFS, LEVEL_MAX_PEAK_DBFS, LEVEL_MAX_GAIN_DB). */
  readonly level: Readonly<LevelPolicy>;
  /** DTMF detection and masking (DTMF, DTMF_GUARD_MS, DTMF_MASK). */
  readonly dtmf: Readonly<DtmfPolicy>;
  /** The watched folder (WATCH_*); `dir` undefined: `serve` watches nothing. */
  readonly watch: {
    readonly dir: string | undefined;
    readonly pattern: string | undefined;
    readonly defaults: string | undefined;
    readonly timezone: string;
    readonly sidecar: SidecarMode;
    readonly stableSeconds: number;
    readonly pollSeconds: number;
    readonly stateDir: string;
  };
  /** GET /metrics is served without the access control (METRICS_PUBLIC). */
  readonly metricsPublic: boolean;
  /** The console's waveform pictures are drawn as a job is delivered, before its audio is deleted. */
  readonly waveformsOnDelivery: boolean;
  /** Issue 25: reconciliation with Imagicle's reads before a re-send (RECONCILE, RECONCILE_RECHECK_MS). */
  readonly reconcile: { readonly mode: ReconcileMode; readonly recheckMs: number };
  /** METRICS_PORT/METRICS_HOST: /metrics and /healthz on a listener of their own, without credentials; none: off. */
  readonly metricsListener: { readonly port: number; readonly host: string } | undefined;
  /** TRUNCATED: what happens to a recording shorter than its container declares (pipeline/truncation.ts). */
  readonly truncated: TruncatedPolicy;
  /** Webhooks (WEBHOOKS, WEBHOOKS_FILE, WEBHOOK_*): where each owner's job events go, and how they are sent. */
  readonly webhooks: Readonly<WebhookSettings>;
  /** Variables that look like settings but are not (a typo, a singular): each with the setting it resembles. */
  readonly unknownSettings: readonly UnknownSetting[];
}

export interface UnknownSetting {
  name: string;
  closest: string;
}

/** The startup warning for one of them. */
export const describeUnknownSetting = (u: UnknownSetting): string =>
  `${u.name} is not a setting of the gateway and is ignored; did you mean ${u.closest}?`;

/** Every setting the gateway reads (the README's table lists the same; a test checks it). */
export const SETTING_NAMES: readonly string[] = Object.keys(envSchema.shape);

/** Per instance: `$TMPDIR/imagicle-gateway-<port>` (the process id for port 0: the kernel picks the port). */
function defaultTmpDir(port: number): string {
  return path.join(os.tmpdir(), `imagicle-gateway-${port === 0 ? `pid${process.pid}` : port}`);
}

/** Per emulator: `$TMPDIR/imagicle-gateway-emulator-<EMULATOR_PORT>`. */
function defaultEmulatorDir(port: number): string {
  return path.join(os.tmpdir(), `imagicle-gateway-emulator-${port === 0 ? `pid${process.pid}` : port}`);
}

/** Damerau-Levenshtein distance (optimal string alignment): a swap of two letters counts once. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** First words of the settings that have several (IMAGICLE_, SPOOL_, WATCH_…); NODE_ belongs to Node itself. */
const SETTING_PREFIXES: ReadonlySet<string> = new Set(
  SETTING_NAMES.filter((n) => n.includes('_') && !n.startsWith('NODE_')).map((n) => n.split('_')[0]!),
);

/**
 * Environment variables that look like one of the gateway's settings but are not one: they share a setting's
 * first word (GATEWAY_API_KEY, IMAGICLE_URI), or are a letter or two away from one (CONCURENCY). Each comes with
 * the closest setting, for a warning at startup: a misspelt setting is otherwise silently ignored.
 */
export function unknownSettingsIn(env: Record<string, string | undefined>): UnknownSetting[] {
  const known = new Set(SETTING_NAMES);
  const found: UnknownSetting[] = [];
  for (const name of Object.keys(env).sort()) {
    if (known.has(name) || !/^[A-Z][A-Z0-9_]*$/.test(name)) continue;
    const ranked = SETTING_NAMES.map((setting) => ({ setting, d: distance(name, setting) })).sort((x, y) => x.d - y.d);
    const nearest = ranked[0]!;
    const prefixed = SETTING_PREFIXES.has(name.split('_')[0]!);
    const typo = name.length >= 6 && nearest.d <= 2;
    if (prefixed || typo) found.push({ name, closest: nearest.setting });
  }
  return found;
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
  let webhooks: ReturnType<typeof webhookSettingsOf> | undefined;
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(`${issue.path.join('.') || '(env)'}: ${issue.message}`);
  }
  // From the raw values, so that these are listed even when another variable failed its schema.
  problems.push(...hardeningProblems(source));
  if (parsed.success) {
    const e = parsed.data;
    const production = e.NODE_ENV === 'production';
    if (production && !e.IMAGICLE_URL) {
      problems.push('IMAGICLE_URL: required when NODE_ENV=production (the embedded emulator is for development only)');
    }
    if (e.OUTPUT_FORMAT === 'mp3' && !MP3_SAMPLE_RATES.includes(e.OUTPUT_SAMPLE_RATE)) {
      problems.push(`OUTPUT_SAMPLE_RATE: MP3 supports ${MP3_SAMPLE_RATES.join(', ')} Hz`);
    }
    if (e.RETRY_MIN_DELAY_MS > e.RETRY_MAX_DELAY_MS) {
      problems.push('RETRY_MIN_DELAY_MS: must not be more than RETRY_MAX_DELAY_MS');
    }
    if (e.LEVEL_TARGET_DBFS >= e.LEVEL_MAX_PEAK_DBFS) {
      problems.push('LEVEL_TARGET_DBFS: must be below LEVEL_MAX_PEAK_DBFS');
    }
    if ((e.IMAGICLE_USERNAME === undefined) !== (e.IMAGICLE_PASSWORD === undefined)) {
      problems.push('IMAGICLE_USERNAME and IMAGICLE_PASSWORD: set both or neither');
    }
    problems.push(...distributedProblems(e));
    const trust = parseTrustProxy(e.TRUST_PROXY).problem;
    if (trust) problems.push(trust);
    problems.push(
      ...fileDoorProblems(
        { pattern: e.WATCH_PATTERN, defaults: e.WATCH_DEFAULTS, timezone: e.WATCH_TIMEZONE },
        'WATCH_',
      ),
    );
    webhooks = webhookSettingsOf(e);
    problems.push(...webhooks.problems);
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  const e = parsed.data;
  const destination = destinationOf(e.IMAGICLE_URL, e.EMULATOR_PORT, e.IMAGICLE_USERNAME);
  const config: Config = {
    production: e.NODE_ENV === 'production',
    port: e.PORT,
    host: e.HOST,
    imagicleUrl: e.IMAGICLE_URL,
    destination,
    imagicleCredentials:
      e.IMAGICLE_USERNAME !== undefined && e.IMAGICLE_PASSWORD !== undefined
        ? { username: e.IMAGICLE_USERNAME, password: e.IMAGICLE_PASSWORD }
        : undefined,
    upstreamTimeoutMs: e.IMAGICLE_TIMEOUT_MS,
    upstreamConnectTimeoutMs: e.IMAGICLE_CONNECT_TIMEOUT_MS,
    upstreamMinBytesPerSecond: e.IMAGICLE_MIN_BYTES_PER_SECOND,
    delivery: {
      mode: e.DELIVERY,
      retry: {
        ...DEFAULT_RETRY_POLICY,
        maxAttempts: e.RETRY_MAX_ATTEMPTS,
        minDelayMs: e.RETRY_MIN_DELAY_MS,
        maxDelayMs: e.RETRY_MAX_DELAY_MS,
        maxTotalMs: e.RETRY_MAX_TOTAL_MS,
        retryAmbiguous: e.RETRY_AMBIGUOUS,
      },
      spoolDir: path.resolve(e.SPOOL_DIR),
      spoolMaxBytes: e.SPOOL_MAX_BYTES,
      spoolMaxAgeMs: e.SPOOL_MAX_AGE,
      spoolRetryMaxDelayMs: e.SPOOL_RETRY_MAX_DELAY_MS,
      spoolConcurrency: e.SPOOL_CONCURRENCY,
      dedupWindowMs: e.DEDUP_WINDOW,
      dedupAnswer: e.DEDUP_ANSWER,
    },
    output: {
      format: e.OUTPUT_FORMAT,
      sampleRate: e.OUTPUT_SAMPLE_RATE,
      channels: e.CHANNELS,
      mp3BitrateKbps: e.MP3_BITRATE,
    },
    oversize: {
      policy: e.OVERSIZE,
      compressOrder: e.COMPRESS_ORDER,
      silenceWindowSeconds: e.SPLIT_SILENCE_WINDOW_SECONDS,
    },
    limits: {
      maxPartBytes: e.MAX_PART_BYTES,
      maxUploadBytes: e.MAX_UPLOAD_BYTES,
      maxDurationSeconds: e.MAX_DURATION_SECONDS,
      maxChannelsIn: e.MAX_CHANNELS_IN,
      processTimeoutMs: e.FFMPEG_TIMEOUT_MS,
    },
    voxSampleRate: e.VOX_SAMPLE_RATE,
    ffmpegPath: e.FFMPEG_PATH,
    ffprobePath: e.FFPROBE_PATH,
    tmpDir: path.resolve(e.TMP_DIR ?? defaultTmpDir(e.PORT)),
    emulatorDir: path.resolve(e.EMULATOR_DIR ?? defaultEmulatorDir(e.EMULATOR_PORT)),
    emulatorPort: e.EMULATOR_PORT,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    logLevel: e.LOG_LEVEL,
    access: {
      apiKeys: parseApiKeys(e.GATEWAY_API_KEYS ?? '').keys,
      adminKeys: parseApiKeys(e.GATEWAY_ADMIN_KEYS ?? '').keys,
      basicUsers: parseBasicUsers(e.GATEWAY_BASIC_USERS ?? '').users,
      allowAnonymous: e.ALLOW_ANONYMOUS,
    },
    upstreamTls: {
      caFile: e.IMAGICLE_CA_FILE === undefined ? undefined : path.resolve(e.IMAGICLE_CA_FILE),
      ca: e.IMAGICLE_CA_FILE === undefined ? undefined : readFileSync(path.resolve(e.IMAGICLE_CA_FILE), 'utf8'),
      insecure: e.IMAGICLE_TLS_INSECURE,
    },
    queue: { concurrency: e.CONCURRENCY, queueLimit: e.QUEUE_LIMIT, longJobBytes: e.LONG_JOB_BYTES },
    metricsPublic: e.METRICS_PUBLIC,
    waveformsOnDelivery: e.WAVEFORMS_ON_DELIVERY,
    uploads: {
      idleTimeoutMs: e.UPLOAD_IDLE_TIMEOUT_MS,
      minBytesPerSecond: e.UPLOAD_MIN_BYTES_PER_SECOND,
      requestTimeoutMs: requestTimeoutFor(e.MAX_UPLOAD_BYTES, e.UPLOAD_MIN_BYTES_PER_SECOND),
    },
    distributed:
      e.QUEUE_URL === undefined
        ? undefined
        : { queueUrl: e.QUEUE_URL, blobDir: path.resolve(e.BLOB_DIR ?? ''), role: e.ROLE, lockMs: e.QUEUE_LOCK_MS },
    stereo: { channelOrder: e.CHANNEL_ORDER, sourceProfile: e.SOURCE_PROFILE, check: e.STEREO_CHECK },
    level: {
      mode: e.LEVEL,
      targetDbfs: e.LEVEL_TARGET_DBFS,
      maxPeakDbfs: e.LEVEL_MAX_PEAK_DBFS,
      maxGainDb: e.LEVEL_MAX_GAIN_DB,
    },
    watch: {
      dir: e.WATCH_DIR === undefined ? undefined : path.resolve(e.WATCH_DIR),
      pattern: e.WATCH_PATTERN,
      defaults: e.WATCH_DEFAULTS,
      timezone: e.WATCH_TIMEZONE,
      sidecar: e.WATCH_SIDECAR,
      stableSeconds: e.WATCH_STABLE_SECONDS,
      pollSeconds: e.WATCH_POLL_SECONDS,
      stateDir: path.resolve(e.WATCH_STATE_DIR ?? path.join('data', 'watch-state', destination)),
    },
    bounds: {
      maxMemoryMb: e.FFMPEG_MAX_MEMORY_MB,
      maxExpansion: e.MAX_EXPANSION,
      minFreeDiskBytes: e.MIN_FREE_DISK_BYTES,
      authFailLimit: e.AUTH_FAIL_LIMIT,
      authFailWindowMs: e.AUTH_FAIL_WINDOW,
    },
    trustProxy: parseTrustProxy(e.TRUST_PROXY).value,
    webhooks: (webhooks ?? webhookSettingsOf(e)).settings,
    dtmf: { mode: e.DTMF, guardMs: e.DTMF_GUARD_MS, mask: e.DTMF_MASK },
    unknownSettings: unknownSettingsIn(env),
    metricsListener: e.METRICS_PORT === undefined ? undefined : { port: e.METRICS_PORT, host: e.METRICS_HOST },
    truncated: e.TRUNCATED,
    reconcile: { mode: e.RECONCILE, recheckMs: e.RECONCILE_RECHECK_MS },
  };
  return deepFreeze(config);
}

/** The webhook settings (issue 23), with every problem of WEBHOOKS, WEBHOOKS_FILE and the lists. */
function webhookSettingsOf(e: Env): { settings: WebhookSettings; problems: string[] } {
  const problems: string[] = [];
  let text = e.WEBHOOKS;
  let label = 'WEBHOOKS';
  if (e.WEBHOOKS_FILE !== undefined) {
    if (e.WEBHOOKS !== undefined) problems.push('WEBHOOKS and WEBHOOKS_FILE: set one or the other');
    label = `WEBHOOKS_FILE (${e.WEBHOOKS_FILE})`;
    try {
      text = readFileSync(path.resolve(e.WEBHOOKS_FILE), 'utf8');
    } catch (error) {
      problems.push(`${label}: cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    }
  }
  const parsed = parseWebhooks(text, label);
  problems.push(...parsed.problems);
  const privateNetworks = listOf(e.WEBHOOK_PRIVATE_NETWORKS);
  problems.push(...networksOf(privateNetworks).problems.map((p) => `WEBHOOK_PRIVATE_NETWORKS: ${p}`));
  const allowedHosts = listOf(e.WEBHOOK_ALLOWED_HOSTS);
  for (const host of allowedHosts) {
    if (!/^(\*\.)?[A-Za-z0-9.:[\]_-]+$/.test(host)) {
      problems.push(`WEBHOOK_ALLOWED_HOSTS: "${host}" is not a host name (e.g. hooks.example.com or *.example.com)`);
    }
  }
  if (e.WEBHOOK_RETRY_MIN_DELAY_MS > e.WEBHOOK_RETRY_MAX_DELAY_MS) {
    problems.push('WEBHOOK_RETRY_MIN_DELAY_MS: must not be more than WEBHOOK_RETRY_MAX_DELAY_MS');
  }
  return {
    settings: {
      owners: parsed.owners,
      allowedHosts,
      privateNetworks,
      maxAgeMs: e.WEBHOOK_MAX_AGE,
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      concurrency: e.WEBHOOK_CONCURRENCY,
      minDelayMs: e.WEBHOOK_RETRY_MIN_DELAY_MS,
      maxDelayMs: e.WEBHOOK_RETRY_MAX_DELAY_MS,
      historyMs: e.WEBHOOK_HISTORY,
      publicUrl: e.WEBHOOK_PUBLIC_URL,
    },
    problems,
  };
}

/**
 * The server's bound on receiving one whole request: the largest upload at
 * the minimum rate, plus a minute; 0 (none) when the rate check is off.
 */
export function requestTimeoutFor(maxUploadBytes: number, minBytesPerSecond: number): number {
  if (minBytesPerSecond <= 0) return 0;
  return Math.min(7 * 86_400_000, Math.ceil((maxUploadBytes / minBytesPerSecond) * 1000) + 60_000);
}

function deepFreeze<T extends object>(value: T): T {
  for (const v of Object.values(value)) if (v && typeof v === 'object') deepFreeze(v as object);
  return Object.freeze(value);
}

/** A short, stable digest of where recordings go (Config.destination): never the URL or the user in clear. */
export function destinationOf(url: string | undefined, emulatorPort: number, username: string | undefined): string {
  const where = url ?? `embedded-emulator:${emulatorPort}`;
  return createHash('sha256')
    .update(`${where}\n${username ?? ''}`)
    .digest('hex')
    .slice(0, 12);
}
