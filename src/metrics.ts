/**
 * Prometheus metrics of one gateway (GET /metrics, prom-client).
 *
 * One Registry per gateway, never prom-client's global one: tests run several
 * gateways in one process, and each must count only its own traffic.
 * Labels are low-cardinality by construction: endpoints, decisions, outcomes,
 * stages and states are fixed lists; codecs come from the demuxer whitelist;
 * statuses are HTTP codes (or `error`). Nothing caller-supplied (ids, names)
 * ever becomes a label.
 *
 * The pipeline, the delivery and the upstream client record through the
 * small methods below; the gauges read the process slots and the spool when scraped.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ReconcileResult } from './imagicle/reconcile.js';
import type { PreparedAudio } from './pipeline/prepared.js';
import type { AttemptOutcome, WebhookMetricsSink } from './webhooks/dispatcher.js';
import type { WebhookEventType } from './webhooks/delivery.js';
import { refusalReason } from './refusal.js';
import { RateHistory } from './rate-history.js';

const METRICS_PREFIX = 'imagicle_gateway_';

export type Endpoint = 'drop-in' | 'native' | 'transcode';
export type Decision = 'pass-through' | 'repair' | 'transcode' | 'merge' | 'none';

/** What the gauges read at scrape time (the process slots, the spool, the readiness check), when they exist. */
export interface GaugeSources {
  processSlots?: { stats(): { running: number; waiting: number } } | undefined;
  spool?:
    | {
        /** Jobs per state, kept as jobs change (never a listing). */
        counts(): Readonly<Record<string, number>>;
        usedBytes(): number;
        /** When the oldest job not delivered yet was accepted (ISO), if any. */
        oldestUndeliveredAt(): string | undefined;
      }
    | undefined;
  /** The webhook outbox (issue 23): when its oldest pending delivery was created. */
  webhooks?: { oldestPendingAt(): Promise<number | undefined> } | undefined;
  /** The (cached) readiness check of /readyz: is Imagicle reachable? */
  upstreamReachable?: (() => Promise<boolean>) | undefined;
}

/** The configured ceilings the histograms must reach, and what build_info says. */
export interface MetricsSettings {
  /** FFMPEG_TIMEOUT_MS: the longest a stage can take. */
  ffmpegTimeoutMs: number;
  /** IMAGICLE_TIMEOUT_MS. */
  upstreamTimeoutMs: number;
  /** MAX_DURATION_SECONDS. */
  maxDurationSeconds: number;
  version: string;
  ffmpegVersion: string | undefined;
}

const DEFAULT_METRICS_SETTINGS: MetricsSettings = {
  ffmpegTimeoutMs: 3_600_000,
  upstreamTimeoutMs: 120_000,
  maxDurationSeconds: 43_200,
  version: 'unknown',
  ffmpegVersion: undefined,
};

/** The doors that take files from disk, and what became of each file. */
export type FileDoor = 'import' | 'watch';
export type DoorOutcome = 'taken' | 'delivered' | 'failed' | 'invalid';

/**
 * Buckets up to a configured ceiling: the base buckets below it, then the ceiling itself, so that the
 * largest observation the gateway allows lands in a bucket of its own rather than only in +Inf.
 */
export function bucketsUpTo(base: readonly number[], ceiling: number): number[] {
  const below = base.filter((b) => b < ceiling);
  return ceiling > 0 && Number.isFinite(ceiling) ? [...below, ceiling] : [...base];
}

const STAGE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
const AUDIO_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 43200, 86400];
const UPSTREAM_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

const RECONCILE_RESULTS: readonly ReconcileResult[] = ['found', 'several', 'not_found', 'unavailable'];
const SPOOL_STATES = ['received', 'ready', 'delivering', 'delivered', 'failed'] as const;

/** The decision label of a prepared recording: merge for two legs, else the plan's action. */
export function decisionOf(prepared: PreparedAudio): Decision {
  if (prepared.stereo?.source === 'two-legs') return 'merge';
  const action = prepared.plan.action;
  return action === 'repair-header' ? 'repair' : action;
}

/** "ffmpeg version 5.1.9-0+deb12u1 Copyright …" → "5.1.9-0+deb12u1". */
export function ffmpegLabel(banner: string | undefined): string {
  return (/version (\S+)/.exec(banner ?? '')?.[1] ?? banner ?? 'unknown').slice(0, 64);
}

/** Codec names reach us from ffprobe over whitelisted demuxers; still, only a plain token becomes a label. */
function codecLabel(name: string | undefined): string {
  return name && /^[a-z0-9_]{1,32}$/.test(name) ? name : 'other';
}

export class GatewayMetrics implements WebhookMetricsSink {
  readonly registry = new Registry();
  private sources: GaugeSources = {};
  /** The last hour per 5 minutes, for the console's overview (GET /metrics/rates); a job event sink as well. */
  readonly rates = new RateHistory();
  private readonly settings: MetricsSettings;

  private readonly uploads = new Counter({
    name: `${METRICS_PREFIX}uploads_total`,
    help: 'Uploads answered, by endpoint, decision and outcome',
    labelNames: ['endpoint', 'decision', 'outcome'] as const,
    registers: [this.registry],
  });
  private readonly inputCodecs = new Counter({
    name: `${METRICS_PREFIX}input_codecs_total`,
    help: 'Recordings probed, by input codec',
    labelNames: ['codec'] as const,
    registers: [this.registry],
  });
  private readonly upstreamAnswers = new Counter({
    name: `${METRICS_PREFIX}upstream_responses_total`,
    help: 'Answers from Imagicle by HTTP status (an attempt with no answer is counted in upstream_errors_total)',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  private readonly upstreamErrors = new Counter({
    name: `${METRICS_PREFIX}upstream_errors_total`,
    help: 'Attempts towards Imagicle that got no HTTP answer (unreachable, timeout, connection reset)',
    registers: [this.registry],
  });
  private readonly retries = new Counter({
    name: `${METRICS_PREFIX}delivery_retries_total`,
    help: 'Delivery attempts that repeated an earlier one (in the request or from the spool)',
    registers: [this.registry],
  });
  private readonly duplicates = new Counter({
    name: `${METRICS_PREFIX}duplicates_suppressed_total`,
    help: 'Uploads recognised as a duplicate of an earlier one and not delivered again',
    registers: [this.registry],
  });
  private readonly dtmfTones = new Counter({
    name: `${METRICS_PREFIX}dtmf_tones_total`,
    help: 'DTMF (keypad) tones found in recordings (DTMF=detect|mask): detected (all), masked (replaced)',
    labelNames: ['action'] as const,
    registers: [this.registry],
  });
  private readonly dtmfRecordings = new Counter({
    name: `${METRICS_PREFIX}dtmf_recordings_total`,
    help: 'Recordings with DTMF tones: detected (all), masked (their tones replaced)',
    labelNames: ['action'] as const,
    registers: [this.registry],
  });
  private readonly reconciliations = new Counter({
    name: `${METRICS_PREFIX}reconciliations_total`,
    help: 'Questions asked of Imagicle before a re-send after an ambiguous attempt, by outcome (found: one match, not sent again; several: a duplicate already existed; not_found: sent again; unavailable: reads refused or failing)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  private readonly splitParts = new Counter({
    name: `${METRICS_PREFIX}split_parts_total`,
    help: 'Parts produced by splitting oversize recordings',
    registers: [this.registry],
  });
  private readonly refused = new Counter({
    name: `${METRICS_PREFIX}inputs_refused_total`,
    help: 'Uploads refused as unreadable, hostile or out of bounds, by error code and precise reason',
    labelNames: ['code', 'reason'] as const,
    registers: [this.registry],
  });
  private readonly doorFiles = new Counter({
    name: `${METRICS_PREFIX}door_files_total`,
    help: 'Files of the file doors (watched folder, import) taken, delivered, failed and invalid, per door',
    labelNames: ['door', 'outcome'] as const,
    registers: [this.registry],
  });
  private readonly stages: Histogram<'stage'>;
  private readonly audioSeconds: Histogram;
  private readonly uploadBytes = new Histogram({
    name: `${METRICS_PREFIX}upload_bytes`,
    help: 'Audio bytes received per upload',
    buckets: [16e3, 64e3, 256e3, 1e6, 4e6, 16e6, 64e6, 256e6, 1e9],
    registers: [this.registry],
  });
  private readonly upstreamLatency: Histogram;

  // Webhooks (issue 23): attempts by event and outcome, their latency, deliveries given up, the oldest pending.
  private readonly webhookAttempts = new Counter({
    name: `${METRICS_PREFIX}webhooks_sent_total`,
    help: 'Webhook attempts by event and outcome (ok, http-error, unreachable, gone, refused)',
    labelNames: ['event', 'outcome'] as const,
    registers: [this.registry],
  });
  private readonly webhookLatency = new Histogram({
    name: `${METRICS_PREFIX}webhook_attempt_duration_seconds`,
    help: 'Time of one webhook attempt, until its answer or failure',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  private readonly webhooksFailed = new Counter({
    name: `${METRICS_PREFIX}webhooks_failed_total`,
    help: 'Webhook deliveries given up (WEBHOOK_MAX_AGE passed, address refused, endpoint removed), by event',
    labelNames: ['event'] as const,
    registers: [this.registry],
  });

  constructor(settings: Partial<MetricsSettings> = {}) {
    this.settings = { ...DEFAULT_METRICS_SETTINGS, ...settings };
    const { ffmpegTimeoutMs, upstreamTimeoutMs, maxDurationSeconds } = this.settings;
    this.stages = new Histogram({
      name: `${METRICS_PREFIX}stage_duration_seconds`,
      help: 'Time per stage of an upload (buckets up to FFMPEG_TIMEOUT_MS)',
      labelNames: ['stage'] as const,
      buckets: bucketsUpTo(STAGE_BUCKETS, ffmpegTimeoutMs / 1000),
      registers: [this.registry],
    });
    this.audioSeconds = new Histogram({
      name: `${METRICS_PREFIX}recording_audio_seconds`,
      help: 'Measured audio duration per recording (buckets up to MAX_DURATION_SECONDS)',
      buckets: bucketsUpTo(AUDIO_BUCKETS, maxDurationSeconds),
      registers: [this.registry],
    });
    this.upstreamLatency = new Histogram({
      name: `${METRICS_PREFIX}upstream_request_duration_seconds`,
      help: 'Time of one POST to Imagicle, body included, until its answer or failure (buckets up to IMAGICLE_TIMEOUT_MS)',
      buckets: bucketsUpTo(UPSTREAM_BUCKETS, upstreamTimeoutMs / 1000),
      registers: [this.registry],
    });
    collectDefaultMetrics({ register: this.registry });
    for (const outcome of RECONCILE_RESULTS) this.reconciliations.inc({ outcome }, 0);
    const sources = (): GaugeSources => this.sources;
    new Gauge({
      name: `${METRICS_PREFIX}build_info`,
      help: 'Always 1: the gateway version and the ffmpeg version it runs',
      labelNames: ['version', 'ffmpeg'] as const,
      registers: [this.registry],
    }).set({ version: this.settings.version, ffmpeg: ffmpegLabel(this.settings.ffmpegVersion) }, 1);
    new Gauge({
      name: `${METRICS_PREFIX}upstream_up`,
      help: 'The readiness check of Imagicle (as GET /readyz, cached a few seconds): 1 reachable, 0 not',
      registers: [this.registry],
      async collect() {
        const check = sources().upstreamReachable;
        if (check) this.set((await check()) ? 1 : 0);
      },
    });
    new Gauge({
      name: `${METRICS_PREFIX}webhook_oldest_pending_age_seconds`,
      help: 'Age of the oldest webhook delivery not acknowledged yet; 0 when none',
      registers: [this.registry],
      async collect() {
        const oldest = await sources()
          .webhooks?.oldestPendingAt()
          .catch(() => undefined);
        this.set(oldest === undefined ? 0 : Math.max(0, (Date.now() - oldest) / 1000));
      },
    });
    new Gauge({
      name: `${METRICS_PREFIX}conversions`,
      help: 'ffmpeg/ffprobe jobs running and waiting for a slot (CONCURRENCY, QUEUE_LIMIT)',
      labelNames: ['state'] as const,
      registers: [this.registry],
      collect() {
        const stats = sources().processSlots?.stats();
        this.set({ state: 'running' }, stats?.running ?? 0);
        this.set({ state: 'waiting' }, stats?.waiting ?? 0);
      },
    });
    new Gauge({
      name: `${METRICS_PREFIX}spool_jobs`,
      help: 'Jobs in the delivery spool by state',
      labelNames: ['state'] as const,
      registers: [this.registry],
      collect() {
        const counts = sources().spool?.counts() ?? {};
        for (const state of SPOOL_STATES) this.set({ state }, counts[state] ?? 0);
      },
    });
    new Gauge({
      name: `${METRICS_PREFIX}spool_bytes`,
      help: 'Disk held by spooled audio',
      registers: [this.registry],
      collect() {
        this.set(sources().spool?.usedBytes() ?? 0);
      },
    });
    new Gauge({
      name: `${METRICS_PREFIX}oldest_undelivered_job_age_seconds`,
      help: 'Age of the oldest job not delivered yet (failed ones included); 0 when none',
      registers: [this.registry],
      collect() {
        const oldest = sources().spool?.oldestUndeliveredAt();
        this.set(oldest === undefined ? 0 : Math.max(0, (Date.now() - Date.parse(oldest)) / 1000));
      },
    });
  }

  /** Where the gauges read from; set once the process slots and the spool exist. */
  watch(sources: GaugeSources): void {
    this.sources = { ...this.sources, ...sources };
  }

  upload(endpoint: Endpoint, decision: Decision, outcome: string): void {
    this.uploads.inc({ endpoint, decision, outcome });
    this.rates.count('uploads');
  }

  received(bytes: number, seconds: number): void {
    this.uploadBytes.observe(bytes);
    this.stages.observe({ stage: 'receive' }, seconds);
  }

  /** A recording probed and rendered (in a request or by the spool's worker). */
  prepared(prepared: PreparedAudio): void {
    this.inputCodecs.inc({ codec: codecLabel(prepared.probe.audio.codecName) });
    this.stages.observe({ stage: 'probe' }, prepared.timings.probeMs / 1000);
    this.stages.observe({ stage: 'render' }, (prepared.timings.processMs + prepared.timings.measureMs) / 1000);
    this.audioSeconds.observe(prepared.durationSeconds);
    const dtmf = prepared.dtmf;
    if (dtmf && dtmf.tones > 0) {
      // Every tone found counts as detected; those replaced count as masked as well.
      this.dtmfTones.inc({ action: 'detected' }, dtmf.tones);
      this.dtmfRecordings.inc({ action: 'detected' });
      if (dtmf.action === 'masked') {
        this.dtmfTones.inc({ action: 'masked' }, dtmf.tones);
        this.dtmfRecordings.inc({ action: 'masked' });
      }
    }
  }

  split(parts: number): void {
    if (parts > 1) this.splitParts.inc(parts);
  }

  delivered(seconds: number): void {
    this.stages.observe({ stage: 'deliver' }, seconds);
  }

  upstreamAnswer(status: number | 'error', seconds: number): void {
    // No answer is not a status: it has its own counter, so that status only ever holds HTTP codes.
    if (status === 'error') this.upstreamErrors.inc();
    else this.upstreamAnswers.inc({ status: String(status) });
    this.upstreamLatency.observe(seconds);
  }

  /** A file door's file: `taken` when its work starts, then one of the others when it ends. */
  doorFile(door: FileDoor, outcome: DoorOutcome): void {
    this.doorFiles.inc({ door, outcome });
  }

  retry(): void {
    this.retries.inc();
  }

  /** How one reconciliation ended (imagicle/reconcile.ts). */
  reconciled(result: ReconcileResult): void {
    this.reconciliations.inc({ outcome: result });
  }

  duplicate(): void {
    this.duplicates.inc();
  }

  /** A refused input, labelled by its code and the precise reason read from the error (refusal.ts). */
  refusedInput(error: { code: string; message: string }): void {
    this.refused.inc({ code: error.code, reason: refusalReason(error) });
  }

  webhookAttempt(event: WebhookEventType, outcome: AttemptOutcome, seconds: number): void {
    this.webhookAttempts.inc({ event, outcome });
    this.webhookLatency.observe(seconds);
  }

  webhookFailed(event: WebhookEventType): void {
    this.webhooksFailed.inc({ event });
  }

  contentType(): string {
    return this.registry.contentType;
  }

  expose(): Promise<string> {
    return this.registry.metrics();
  }
}
