/**
 * What the caller gets back after delivery. One part: Imagicle's own answer,
 * unchanged. Several parts: 201 with every part listed, or, when a part was
 * not delivered, that part's failure with the list of what was and was not
 * delivered (no silent partial success).
 */
import { imagicleErrorSchema } from '../imagicle/schema.js';
import type { IngestResult, PartDelivery } from '../pipeline/ingest.js';

export interface Answer {
  status: number;
  contentType: string | undefined;
  body: string;
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
    error: d.delivered ? undefined : (d.upstream ? (d.upstream.json ?? d.upstream.body) : d.error?.toBody()),
  }));
}

/** The failing part, when there is one. */
export function failedPart(result: IngestResult): PartDelivery | undefined {
  return result.deliveries.find((d) => d.attempted && !d.delivered);
}

export function dropInAnswer(result: IngestResult): Answer {
  const [only] = result.deliveries;
  if (result.deliveries.length === 1 && only?.upstream) {
    return { status: only.upstream.status, contentType: only.upstream.contentType, body: only.upstream.body };
  }
  const parts = summariseParts(result.deliveries);
  const failed = failedPart(result);
  if (!failed) return json(201, { parts });
  const status = failed.upstream?.status ?? failed.error?.status ?? 502;
  const upstreamError = imagicleErrorSchema.safeParse(failed.upstream?.json);
  const delivered = parts.filter((p) => p.delivered).map((p) => p.part);
  const cause = upstreamError.success
    ? upstreamError.data.message
    : failed.error?.message ?? `Imagicle answered ${status}`;
  return json(status, {
    reason: upstreamError.success ? upstreamError.data.reason : (failed.error?.reason ?? 0),
    message:
      `Part ${failed.part.index} of ${failed.part.count} was not delivered (${cause}). ` +
      (delivered.length > 0 ? `Parts ${delivered.join(', ')} were delivered; ` : 'No part was delivered; ') +
      `parts ${failed.part.index}–${failed.part.count} were not.`,
    parts,
  });
}

function json(status: number, value: unknown): Answer {
  return { status, contentType: 'application/json; charset=utf-8', body: JSON.stringify(value) };
}
