/** The native endpoint's JSON report: what came in, what was decided, what went out, what Imagicle said. */
import type { IngestResult, PartDelivery } from '../pipeline/ingest.js';

export function buildReport(requestId: string, result: IngestResult, timings: { receivedMs: number; totalMs: number }) {
  const { prepared } = result.fitted;
  const first = result.deliveries[0];
  const { probe } = prepared;
  return {
    requestId,
    input: {
      format: probe.formatName,
      formatLongName: probe.formatLongName,
      codec: probe.audio.codecName,
      codecLongName: probe.audio.codecLongName,
      sampleRate: probe.audio.sampleRate,
      channels: probe.audio.channels,
      channelLayout: probe.audio.channelLayout,
      bitsPerSample: probe.audio.bitsPerSample || undefined,
      durationSeconds: probe.durationSeconds,
      audioStreams: probe.audioStreamCount,
      hasVideo: probe.hasVideo,
      headerless: probe.rawHint?.description,
    },
    decision: { action: prepared.plan.action, reasons: prepared.plan.reasons },
    /** Two legs merged / channels mapped, and the per-channel analysis (stereo outputs only). */
    stereo: result.prepared.stereo,
    /** Level normalization per channel: before/after, gain, limiter, or why nothing was done (LEVEL=speech only). */
    level: result.prepared.level,
    /** DTMF tones per channel, and whether they were masked (DTMF=detect|mask only; never the keys). */
    dtmf: result.prepared.dtmf,
    output: {
      ...prepared.format,
      contentType: prepared.contentType,
      filename: prepared.filename,
      bytes: prepared.bytes,
      samples: prepared.samples,
      duration: prepared.isoDuration,
      durationSeconds: prepared.durationSeconds,
    },
    oversize: result.fitted.oversize,
    /** Shorter than its container declares: both lengths (pipeline/truncation.ts). */
    truncated: result.prepared.truncated ?? prepared.truncated,
    metadata: first?.metadata,
    upstream: {
      status: first?.upstream?.status ?? first?.error?.status,
      id: first?.delivered ? first.upstream?.json : undefined,
      body: first?.upstream ? (first.upstream.json ?? (first.upstream.body || undefined)) : first?.error?.toBody(),
    },
    complete: result.complete,
    parts: summariseParts(result.deliveries),
    timings: {
      receiveMs: Math.round(timings.receivedMs),
      probeMs: Math.round(prepared.timings.probeMs),
      processMs: Math.round(prepared.timings.processMs),
      measureMs: Math.round(prepared.timings.measureMs),
      deliverMs: Math.round(result.deliverMs),
      totalMs: Math.round(timings.totalMs),
    },
  };
}

export interface PartSummary {
  part: number;
  of: number;
  delivered: boolean;
  attempted: boolean;
  id: unknown;
  status: number | undefined;
  startDateTime: unknown;
  duration: string;
  durationSeconds: number;
  bytes: number;
  filename: string;
  error: unknown;
}

export function summariseParts(deliveries: PartDelivery[]): PartSummary[] {
  return deliveries.map((d) => ({
    part: d.part.index,
    of: d.part.count,
    delivered: d.delivered,
    attempted: d.attempted,
    id: d.delivered ? d.upstream?.json : undefined,
    status: d.upstream?.status ?? d.error?.status,
    startDateTime: d.metadata.startDateTime,
    duration: d.part.isoDuration,
    durationSeconds: d.part.durationSeconds,
    bytes: d.part.bytes,
    filename: d.part.filename,
    error: d.delivered ? undefined : d.upstream ? (d.upstream.json ?? d.upstream.body) : d.error?.toBody(),
  }));
}
