/** The native endpoint's JSON report: what came in, what was decided, what went out, what Imagicle said. */
import type { IngestResult } from '../pipeline/ingest.js';

export function buildReport(requestId: string, result: IngestResult, timings: { receivedMs: number; totalMs: number }) {
  const { prepared, upstream } = result;
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
    output: {
      ...prepared.format,
      contentType: prepared.contentType,
      filename: prepared.filename,
      bytes: prepared.bytes,
      samples: prepared.samples,
      duration: prepared.isoDuration,
      durationSeconds: prepared.durationSeconds,
    },
    metadata: result.metadataSent,
    upstream: {
      status: upstream.status,
      id: upstream.status >= 200 && upstream.status < 300 ? upstream.json : undefined,
      body: upstream.json ?? (upstream.body || undefined),
    },
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
