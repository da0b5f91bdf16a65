/**
 * What a job keeps of its preparation and delivery for the console and the
 * jobs API: the input probe, the decision and its reasons, the output, the
 * stereo analysis, and every delivery attempt with Imagicle's answer.
 * Small by construction: no paths, no metadata, answer bodies cut short,
 * at most MAX_HISTORY attempts.
 */
import type { GatewayError } from '../errors.js';
import type { UpstreamResponse } from '../imagicle/client.js';
import type { PreparedAudio } from '../pipeline/prepared.js';
import type { DtmfReport } from '../pipeline/dtmf-report.js';
import type { StereoReport } from '../pipeline/stereo-report.js';

export interface JobReport {
  input: {
    format: string;
    codec: string | undefined;
    sampleRate: number | undefined;
    channels: number | undefined;
    bitsPerSample: number | undefined;
    durationSeconds: number | undefined;
    headerless: string | undefined;
  };
  decision: { action: string; reasons: string[] };
  output: {
    container: string;
    codec: string;
    sampleRate: number;
    channels: number;
    contentType: string;
    bytes: number;
    duration: string;
    durationSeconds: number;
  };
  stereo: Pick<StereoReport, 'source' | 'mapping' | 'analysis' | 'warnings'> | undefined;
  /** DTMF tones per channel (DTMF=detect|mask): when and how loud, never which key. */
  dtmf?: DtmfReport | undefined;
}

export interface AttemptRecord {
  at: string;
  part: number;
  /** The part's attempt number (1-based). */
  attempt: number;
  verdict: string;
  status: number | undefined;
  code: string | undefined;
  /** Imagicle's answer (parsed when JSON, cut to MAX_BODY_CHARS when text), or the gateway's error. */
  answer: unknown;
  ms: number;
}

const MAX_HISTORY = 50;
const MAX_BODY_CHARS = 500;

export function jobReportOf(prepared: PreparedAudio): JobReport {
  const { probe, format, stereo } = prepared;
  return {
    input: {
      format: probe.formatName,
      codec: probe.audio.codecName,
      sampleRate: probe.audio.sampleRate,
      channels: probe.audio.channels,
      bitsPerSample: probe.audio.bitsPerSample || undefined,
      durationSeconds: probe.durationSeconds,
      headerless: probe.rawHint?.description,
    },
    decision: { action: prepared.plan.action, reasons: [...prepared.plan.reasons] },
    output: {
      container: format.container,
      codec: format.codec,
      sampleRate: format.sampleRate,
      channels: format.channels,
      contentType: prepared.contentType,
      bytes: prepared.bytes,
      duration: prepared.isoDuration,
      durationSeconds: prepared.durationSeconds,
    },
    stereo: stereo
      ? { source: stereo.source, mapping: stereo.mapping, analysis: stereo.analysis, warnings: stereo.warnings }
      : undefined,
    ...(prepared.dtmf ? { dtmf: prepared.dtmf } : {}),
  };
}

/** One attempt as the history keeps it. */
export function attemptRecord(
  part: number,
  attempt: number,
  verdict: string,
  result: { response?: UpstreamResponse | undefined; error?: GatewayError | undefined },
  startedAt: number,
): AttemptRecord {
  const { response, error } = result;
  const text = response && response.json === undefined ? response.body.slice(0, MAX_BODY_CHARS) : undefined;
  return {
    at: new Date(startedAt).toISOString(),
    part,
    attempt,
    verdict,
    status: response?.status ?? error?.status,
    code: response ? undefined : typeof error?.detail.code === 'string' ? error.detail.code : error?.code,
    answer: response ? (response.json ?? text) : error?.toBody(),
    ms: Math.max(0, Date.now() - startedAt),
  };
}

/** Appends to the history, keeping the first attempt and the latest ones. */
export function pushAttempt(history: AttemptRecord[] | undefined, record: AttemptRecord): AttemptRecord[] {
  const next = [...(history ?? []), record];
  return next.length > MAX_HISTORY ? [next[0]!, ...next.slice(next.length - MAX_HISTORY + 1)] : next;
}
