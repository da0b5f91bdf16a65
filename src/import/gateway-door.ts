/**
 * `import --gateway URL` and `watch --gateway URL`: the file doors as clients
 * of a running gateway. Each file is uploaded to its native endpoint
 * (`POST /v1/recordings`, `Prefer: respond-async`, labelled with its door by
 * `X-Gateway-Door`), so it becomes a job of that gateway: its job life
 * decides (retries through an outage, failure, held), and the job is listed
 * by the jobs API and the console and counted in the metrics. The door then
 * follows the job (`GET /v1/jobs/{id}`) and the file's status follows it.
 *
 * Files are opened once without following a link (safe-fs.ts) and sent from
 * that descriptor. The gateway's answer is the only thing trusted about the
 * job; the gateway being unreachable or busy is transient (the file waits).
 */
import { openAsBlob } from 'node:fs';
import path from 'node:path';
import { STEREO_FIELDS, REMOTE_ATTACHMENT } from '../pipeline/call-options.js';
import type { StereoRequestOptions } from '../pipeline/stereo-policy.js';
import { parseRetryAfter } from '../delivery/retry.js';
import type { JobDoor } from './job-door.js';
import { fileReport, type FileReport } from './file-report.js';
import type { ImportItem } from './sources.js';
import { openRegularFile, UnsafeFileError, type OpenedFile } from '../safe-fs.js';

export interface GatewayDoorOptions {
  /** The gateway's base URL, e.g. http://gateway:8080. */
  url: string;
  /** One of the gateway's GATEWAY_API_KEYS: the jobs belong to its owner. */
  key: string | undefined;
  door: 'import' | 'watch';
}

/** The header the gateway reads the door label from (http/answer.ts). */
const DOOR_HEADER = 'X-Gateway-Door';

/** Before the gateway answers (a wait for a free slot included); the job's own delivery happens later. */
const UPLOAD_TIMEOUT_MS = 10 * 60_000;
/** Delay after a transient failure of the gateway itself when it gives no Retry-After. */
const GATEWAY_RETRY_MS = 5_000;

const report = fileReport;

/** The job as `GET /v1/jobs/{id}` shows it (delivery/view.ts); only what the door reads. */
interface JobView {
  jobId: string;
  state: string;
  held?: boolean;
  decision?: string;
  possibleDuplicates?: number;
  parts?: Array<{ state?: string; id?: unknown }>;
  report?: { output?: { duration?: string; durationSeconds?: number } };
  lastError?: { message?: string; status?: number };
}

/** A stereo option as the form field the gateway parses (pipeline/call-options.ts). */
function fieldValue(options: StereoRequestOptions, name: (typeof STEREO_FIELDS)[number]): string | undefined {
  const value = options[name];
  if (value === undefined) return undefined;
  // Channels travel 1-based, local first ("3,4").
  if (typeof value === 'object') return `${value.local + 1},${value.remote + 1}`;
  return String(value);
}

function idOf(answer: unknown): string {
  if (typeof answer === 'string') return answer;
  if (answer && typeof answer === 'object' && 'id' in answer) return String((answer as { id: unknown }).id);
  return '';
}

/** What the gateway said, for a person: its `{message}` when it sent one. */
async function messageOf(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  try {
    const json = JSON.parse(text) as { message?: unknown };
    if (typeof json.message === 'string') return `the gateway answered ${response.status}: ${json.message}`;
  } catch {
    // Not JSON: the start of the text.
  }
  return `the gateway answered ${response.status}${text ? `: ${text.slice(0, 200)}` : ''}`;
}

const transient = (status: number): boolean => status === 408 || status === 429 || status >= 500;

export interface GatewayDoor extends JobDoor {
  /** An operator's retry of a failed job (`--retry-failed`): back to the gateway's worker. */
  retry(jobId: string): Promise<void>;
  /** Why the gateway refuses this door's key (401/403), before any file is sent; undefined: accepted or unknown. */
  refusal(): Promise<string | undefined>;
}

export function gatewayDoor(options: GatewayDoorOptions): GatewayDoor {
  const base = options.url.replace(/\/+$/, '');
  const headers = (): Record<string, string> => (options.key ? { Authorization: `Bearer ${options.key}` } : {});

  const waiting = (item: ImportItem, error: string, retryAfter: string | null): FileReport =>
    report(item, 'waiting', {
      error,
      retry: { delayMs: parseRetryAfter(retryAfter ?? undefined) ?? GATEWAY_RETRY_MS, backpressure: false },
    });

  /** What an ended job says about its file; undefined while it is open. */
  const ended = (item: ImportItem, job: JobView): FileReport | undefined => {
    const common = {
      jobId: job.jobId,
      parts: job.parts?.length || undefined,
      duration: job.report?.output?.duration,
      durationSeconds: job.report?.output?.durationSeconds ?? 0,
      decision: job.decision,
      possibleDuplicates: job.possibleDuplicates ?? 0,
      // Imagicle's answer per delivered part, as the in-process import reports it.
      ids: (job.parts ?? []).map((p) => idOf(p.id)).filter((id) => id !== ''),
    };
    if (job.state === 'delivered') return report(item, 'delivered', common);
    if (job.state === 'failed') {
      const error = job.lastError
        ? `${job.lastError.message ?? 'failed'}${job.lastError.status ? ` (${job.lastError.status})` : ''}`
        : 'failed';
      return report(item, 'failed', { ...common, error, permanent: job.held !== true });
    }
    return undefined;
  };

  const outcome = async (item: ImportItem, jobId: string): Promise<FileReport | undefined> => {
    const response = await fetch(`${base}/v1/jobs/${encodeURIComponent(jobId)}`, { headers: headers() });
    if (response.status === 404)
      return report(item, 'failed', { jobId, permanent: true, error: `job ${jobId} is gone from the gateway` });
    if (!response.ok) throw new Error(await messageOf(response));
    return ended(item, (await response.json()) as JobView);
  };

  return {
    outcome,
    async refusal() {
      // A wrong key would otherwise fail every file of the run; the gateway unreachable is a wait, not a refusal.
      const response = await fetch(`${base}/v1/jobs?limit=1`, { headers: headers() }).catch(() => undefined);
      if (!response) return undefined;
      await response.body?.cancel();
      if (response.status === 401 || response.status === 403)
        return `--gateway: ${base} refused the key (${response.status}): give one of its GATEWAY_API_KEYS with --key or GATEWAY_KEY`;
      return undefined;
    },
    async retry(jobId) {
      const response = await fetch(`${base}/v1/jobs/${encodeURIComponent(jobId)}/retry`, {
        method: 'POST',
        headers: headers(),
      });
      // 409: not failed (any more): followed as it is.
      if (!response.ok && response.status !== 409) throw new Error(await messageOf(response));
      await response.body?.cancel();
    },
    async take(item, signal) {
      if (item.refused) return report(item, 'failed', { error: item.refused, permanent: true });
      if (!item.metadata.ok) return report(item, 'invalid', { error: item.metadata.reason });
      const opened: OpenedFile[] = [];
      try {
        const form = new FormData();
        form.append('jsondata', new Blob([JSON.stringify(item.metadata.metadata)], { type: 'application/json' }));
        const legs: Array<[string, string]> = [['attachment', item.path]];
        if (item.remotePath) legs.push([REMOTE_ATTACHMENT, item.remotePath]);
        for (const [field, file] of legs) {
          let source: OpenedFile;
          try {
            source = await openRegularFile(file, item.within);
          } catch (error) {
            if (error instanceof UnsafeFileError)
              return report(item, 'failed', { error: error.message, permanent: true });
            throw error;
          }
          opened.push(source);
          form.append(field, await openAsBlob(source.path), path.basename(file));
        }
        for (const name of STEREO_FIELDS) {
          const value = item.stereoOptions ? fieldValue(item.stereoOptions, name) : undefined;
          if (value !== undefined) form.append(name, value);
        }
        let response: Response;
        try {
          response = await fetch(`${base}/v1/recordings`, {
            method: 'POST',
            headers: { ...headers(), Prefer: 'respond-async', [DOOR_HEADER]: options.door },
            body: form,
            signal: AbortSignal.any([signal, AbortSignal.timeout(UPLOAD_TIMEOUT_MS)]),
          });
        } catch (error) {
          if (signal.aborted) return report(item, 'interrupted', { error: 'interrupted' });
          const cause = (error as { cause?: { code?: string; message?: string } }).cause;
          return waiting(
            item,
            `the gateway cannot be reached: ${cause?.code ?? cause?.message ?? String(error)}`,
            null,
          );
        }
        const jobId = response.headers.get('x-job-id') ?? response.headers.get('x-duplicate-of');
        if (!response.ok) {
          const error = await messageOf(response);
          // A refusal that names a job (Imagicle refused it at once) is that job's outcome.
          if (jobId && !transient(response.status))
            return (await outcome(item, jobId)) ?? report(item, 'accepted', { jobId });
          if (transient(response.status)) return waiting(item, error, response.headers.get('retry-after'));
          return report(item, 'failed', { error, permanent: true });
        }
        await response.body?.cancel();
        if (!jobId) return report(item, 'failed', { error: 'the gateway named no job (X-Job-Id)', permanent: false });
        return (await outcome(item, jobId)) ?? report(item, 'accepted', { jobId });
      } finally {
        await Promise.all(opened.map((o) => o.close()));
      }
    },
  };
}
