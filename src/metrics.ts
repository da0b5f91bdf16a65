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
 * small methods below; the gauges read the queue and the spool when scraped.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { PreparedAudio } from './pipeline/prepare.js';

export const METRICS_PREFIX = 'imagicle_gateway_';

export type Endpoint = 'drop-in' | 'native' | 'transcode';
export type Decision = 'pass-through' | 'repair' | 'transcode' | 'merge' | 'none';
export type Stage = 'receive' | 'probe' | 'render' | 'deliver';

/** What the gauges read at scrape time (the work queue and the spool), when they exist. */
export interface GaugeSources {
  queue?: { stats(): { running: number; waiting: number } } | undefined;
  spool?:
    | {
        /** Jobs per state, kept as jobs change (never a listing). */
        counts(): Readonly<Record<string, number>>;
        usedBytes(): number;
        /** When the oldest job not delivered yet was accepted (ISO), if any. */
        oldestUndeliveredAt(): string | undefined;
      }
    | undefined;
}

const SPOOL_STATES = ['received', 'ready', 'delivering', 'delivered', 'failed'] as const;

/** The decision label of a prepared recording: merge for two legs, else the plan's action. */
export function decisionOf(prepared: PreparedAudio): Decision {
  if (prepared.stereo?.source === 'two-legs') return 'merge';
  const action = prepared.plan.action;
  return action === 'repair-header' ? 'repair' : action;
}

/** Codec names reach us from ffprobe over whitelisted demuxers; still, only a plain token becomes a label. */
function codecLabel(name: string | undefined): string {
  return name && /^[a-z0-9_]{1,32}$/.test(name) ? name : 'other';
}

export class GatewayMetrics {
  readonly registry = new Registry();
  private sources: GaugeSources = {};

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
    help: 'Answers from Imagicle by HTTP status (status="error": no answer: unreachable, timeout, reset)',
    labelNames: ['status'] as const,
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
  private readonly splitParts = new Counter({
    name: `${METRICS_PREFIX}split_parts_total`,
    help: 'Parts produced by splitting oversize recordings',
    registers: [this.registry],
  });
  private readonly refused = new Counter({
    name: `${METRICS_PREFIX}inputs_refused_total`,
    help: 'Uploads refused as unreadable, hostile or out of bounds, by error code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  private readonly stages = new Histogram({
    name: `${METRICS_PREFIX}stage_duration_seconds`,
    help: 'Time per stage of an upload',
    labelNames: ['stage'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });
  private readonly audioSeconds = new Histogram({
    name: `${METRICS_PREFIX}recording_audio_seconds`,
    help: 'Measured audio duration per recording',
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200],
    registers: [this.registry],
  });
  private readonly uploadBytes = new Histogram({
    name: `${METRICS_PREFIX}upload_bytes`,
    help: 'Audio bytes received per upload',
    buckets: [16e3, 64e3, 256e3, 1e6, 4e6, 16e6, 64e6, 256e6, 1e9],
    registers: [this.registry],
  });
  private readonly upstreamLatency = new Histogram({
    name: `${METRICS_PREFIX}upstream_request_duration_seconds`,
    help: 'Time of one POST to Imagicle, body included, until its answer or failure',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    const sources = (): GaugeSources => this.sources;
    new Gauge({
      name: `${METRICS_PREFIX}conversions`,
      help: 'ffmpeg/ffprobe jobs running and waiting for a slot (CONCURRENCY, QUEUE_LIMIT)',
      labelNames: ['state'] as const,
      registers: [this.registry],
      collect() {
        const stats = sources().queue?.stats();
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

  /** Where the gauges read from; set once the queue and the spool exist. */
  watch(sources: GaugeSources): void {
    this.sources = { ...this.sources, ...sources };
  }

  upload(endpoint: Endpoint, decision: Decision, outcome: string): void {
    this.uploads.inc({ endpoint, decision, outcome });
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
  }

  split(parts: number): void {
    if (parts > 1) this.splitParts.inc(parts);
  }

  delivered(seconds: number): void {
    this.stages.observe({ stage: 'deliver' }, seconds);
  }

  upstreamAnswer(status: number | 'error', seconds: number): void {
    this.upstreamAnswers.inc({ status: String(status) });
    this.upstreamLatency.observe(seconds);
  }

  retry(): void {
    this.retries.inc();
  }

  duplicate(): void {
    this.duplicates.inc();
  }

  refusedInput(code: string): void {
    this.refused.inc({ code });
  }

  contentType(): string {
    return this.registry.contentType;
  }

  expose(): Promise<string> {
    return this.registry.metrics();
  }
}
