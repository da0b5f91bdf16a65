/**
 * The Reconciler (delivery/reconcile-port.ts) over Imagicle's read endpoints:
 * before a part is sent again after an ambiguous attempt, ask Imagicle
 * whether it already holds it.
 *
 * - Wait until the ambiguous attempt's own deadline has passed
 *   (IMAGICLE_TIMEOUT_MS after it began): until then Imagicle may still be
 *   importing it.
 * - List the recordings with the part's start instant, local number and
 *   direction; read each candidate's detail; keep those that match
 *   (reconcile-match.ts). None: look once more after RECONCILE_RECHECK_MS,
 *   then "absent". One: "found". Several: the oldest, `others` the rest.
 * - 401/403/404/405 from a read: reads are off for this upstream (a user
 *   without "Call Recording Base Access", an older server). "unavailable",
 *   remembered until the restart, logged once at warning. When the job's
 *   forwarded Authorization was refused (401/403), only that caller's reads
 *   are off. Other failures (no answer, 5xx, an unreadable body) are retried
 *   twice, then "unavailable" for this question only: `available()` stays
 *   as it was, which tells the caller it may ask again later.
 *
 * Reads go through the uploads' UpstreamClient: the configured base URL
 * (never one a caller chose), its TLS dispatcher, credentials and timeouts.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { GatewayError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { UpstreamClient } from './client.js';
import {
  candidateQuery,
  detailSchema,
  listSchema,
  mayBePart,
  mismatchOf,
  oldestFirst,
  sentPartOf,
  type RecordingDetailFields,
  type SentPart,
} from './reconcile-match.js';

/**
 * The port's question and outcome (delivery/reconcile-port.ts), restated here because imagicle/ does not know the
 * delivery layer; src/reconciler.ts checks at compile time that this class is the port's Reconciler.
 */
export interface ReconcileQuestion {
  metadata: Record<string, unknown>;
  callerAuthorization: string | undefined;
  attemptStartedAt: string | undefined;
  notAfter?: number | undefined;
  signal: AbortSignal | undefined;
}
export type ReconcileOutcome =
  | { kind: 'found'; id: string; others: string[] }
  | { kind: 'absent' }
  | { kind: 'unavailable'; reason: string; transient?: boolean }
  | { kind: 'later'; at: number };
/** What a question that was asked ends with. */
type Answer = Exclude<ReconcileOutcome, { kind: 'later' }>;

export const RECONCILE_MODES = ['auto', 'off'] as const;
export type ReconcileMode = (typeof RECONCILE_MODES)[number];

/** How a question ended, for the metrics: found (one match), several, not_found, unavailable. */
export type ReconcileResult = 'found' | 'several' | 'not_found' | 'unavailable';

export interface ReconcilerSettings {
  mode: ReconcileMode;
  /** IMAGICLE_TIMEOUT_MS: an ambiguous attempt is asked about no sooner than this after it began. */
  attemptWindowMs: number;
  /** RECONCILE_RECHECK_MS: the wait before the second look, when the first found nothing. */
  recheckMs: number;
  /** Waits before the 2nd and 3rd try of a read that failed without a refusal (no answer, 5xx). */
  readRetryDelaysMs?: readonly number[];
  /** The gateway has its own credentials (IMAGICLE_USERNAME): `probe()` may ask without a job's Authorization. */
  canProbe?: boolean;
}

export interface ReconcilerDeps {
  upstream: Pick<UpstreamClient, 'read' | 'url'>;
  logger: Logger;
  /** Told how every question ended (GatewayMetrics.reconciled). */
  observe?: ((result: ReconcileResult) => void) | undefined;
}

const REFUSALS = new Set([401, 403, 404, 405]);
const PAGE_SIZE = 50;
const MAX_PAGES = 4;
const MAX_REFUSED_CALLERS = 1000;
const DEFAULT_READ_RETRY_DELAYS_MS = [500, 2000] as const;

/** Reads were refused: for every question to this upstream, or for one caller's forwarded credentials. */
class ReadsRefused extends Error {
  constructor(
    readonly status: number,
    readonly scope: 'upstream' | 'caller',
  ) {
    super(
      status === 404 || status === 405
        ? `Imagicle has no read endpoints (HTTP ${status} on GET Recordings): an older server`
        : `Imagicle refused the read (HTTP ${status}): the ${scope === 'caller' ? "caller's forwarded" : 'configured'} user lacks "Call Recording Base Access"`,
    );
  }
}

/** A read that failed without a refusal, after its retries. */
class ReadFailed extends Error {}

interface Match {
  detail: RecordingDetailFields;
  referenceNumber: string | number | null | undefined;
}

export class ImagicleReconciler {
  private offReason: string | undefined;
  private worked = false;
  private readonly refusedCallers = new Set<string>();
  private warnedCaller = false;

  constructor(
    private readonly settings: ReconcilerSettings,
    private readonly deps: ReconcilerDeps,
  ) {
    if (settings.mode === 'off') this.offReason = 'RECONCILE=off';
  }

  /** True once a read answered, false when reads are off (RECONCILE=off or refused), undefined before any read. */
  available(): boolean | undefined {
    if (this.offReason !== undefined) return false;
    return this.worked ? true : undefined;
  }

  /** Why reconciliation is off, when it is. */
  unavailableReason(): string | undefined {
    return this.offReason;
  }

  /**
   * For /readyz before any question was asked: one list read that matches nothing (a start time in 1970), with
   * the gateway's own credentials. Sets `available()` (and logs the warning when reads are refused); without
   * own credentials, or when the answer is a failure, it stays unknown.
   */
  async probe(signal?: AbortSignal): Promise<boolean | undefined> {
    if (this.offReason !== undefined || this.worked || this.settings.canProbe !== true) return this.available();
    const question = { metadata: {}, callerAuthorization: undefined, attemptStartedAt: undefined, signal };
    const query = { startTime: 'equals:1970-01-01T00:00:00Z', page: '0', pageSize: '1' };
    try {
      await this.read({ query }, question, 'list', []);
    } catch (error) {
      if (error instanceof ReadsRefused) this.refused(error, undefined);
      else if (!(error instanceof ReadFailed) && !signal?.aborted) throw error;
    }
    return this.available();
  }

  async check(question: ReconcileQuestion): Promise<ReconcileOutcome> {
    // A run whose budget ends before the attempt's deadline does not sleep through it holding a slot (or a caller's
    // request open): the part is asked about once the deadline has passed, by the worker. Not a question: not counted.
    const askableAt = this.attemptDeadline(question);
    if (question.notAfter !== undefined && askableAt > question.notAfter) return { kind: 'later', at: askableAt };
    const outcome = await this.answer(question);
    this.deps.observe?.(resultOf(outcome));
    return outcome;
  }

  private async answer(question: ReconcileQuestion): Promise<Answer> {
    if (this.offReason !== undefined) return { kind: 'unavailable', reason: this.offReason };
    const callerKey = question.callerAuthorization === undefined ? undefined : digest(question.callerAuthorization);
    if (callerKey !== undefined && this.refusedCallers.has(callerKey)) {
      return { kind: 'unavailable', reason: "Imagicle refused reads with this caller's forwarded credentials" };
    }
    const sent = sentPartOf(question.metadata);
    if (!sent) return { kind: 'unavailable', reason: 'the metadata sent lacks the fields reconciliation matches on' };
    await this.waitForAttemptDeadline(question);
    try {
      let matches = await this.look(sent, question);
      if (matches.length === 0) {
        await sleep(this.settings.recheckMs, undefined, signalOption(question.signal));
        matches = await this.look(sent, question);
      }
      return this.conclude(matches, sent);
    } catch (error) {
      if (error instanceof ReadsRefused) return this.refused(error, callerKey);
      if (error instanceof ReadFailed) return { kind: 'unavailable', reason: error.message, transient: true };
      throw error;
    }
  }

  /** Imagicle may still be importing the ambiguous attempt until its deadline; unknown start: a full window from now. */
  private attemptDeadline(question: ReconcileQuestion): number {
    const began = question.attemptStartedAt === undefined ? Number.NaN : Date.parse(question.attemptStartedAt);
    return (Number.isNaN(began) ? Date.now() : began) + this.settings.attemptWindowMs;
  }

  private async waitForAttemptDeadline(question: ReconcileQuestion): Promise<void> {
    const wait = this.attemptDeadline(question) - Date.now();
    if (wait > 0) await sleep(wait, undefined, signalOption(question.signal));
  }

  private conclude(matches: Match[], sent: SentPart): Answer {
    const where = { startDateTime: sent.startDateTime, pbxCallId: sent.pbxCallId };
    if (matches.length === 0) {
      this.deps.logger.info(where, 'reconciliation: Imagicle does not hold the part; it will be sent');
      return { kind: 'absent' };
    }
    const [oldest, ...others] = oldestFirst(matches);
    if (!oldest) return { kind: 'absent' }; // not reached: matches is not empty
    const found = { kind: 'found' as const, id: oldest.detail.id, others: others.map((m) => m.detail.id) };
    this.deps.logger.info(
      { ...where, id: found.id, others: found.others },
      found.others.length > 0
        ? 'reconciliation: Imagicle already holds the part more than once; the oldest is kept as its id'
        : 'reconciliation: Imagicle already holds the part; it is not sent again',
    );
    return found;
  }

  private refused(error: ReadsRefused, callerKey: string | undefined): Answer {
    if (error.scope === 'caller' && callerKey !== undefined) {
      if (this.refusedCallers.size >= MAX_REFUSED_CALLERS) this.refusedCallers.clear();
      this.refusedCallers.add(callerKey);
      if (!this.warnedCaller) {
        this.warnedCaller = true;
        this.deps.logger.warn(
          { upstream: this.deps.upstream.url, status: error.status },
          `reconciliation is off for uploads with this forwarded Authorization: ${error.message}; an ambiguous attempt is handled as without reconciliation (possibleDuplicates)`,
        );
      }
      return { kind: 'unavailable', reason: error.message };
    }
    if (this.offReason === undefined) {
      this.offReason = error.message;
      this.deps.logger.warn(
        { upstream: this.deps.upstream.url, status: error.status },
        `reconciliation is off for this Imagicle until the gateway restarts: ${error.message}; an ambiguous attempt is handled as without reconciliation (possibleDuplicates)`,
      );
    }
    return { kind: 'unavailable', reason: this.offReason };
  }

  /** The recordings Imagicle holds that are this part, in the list's order (most recent first). */
  private async look(sent: SentPart, question: ReconcileQuestion): Promise<Match[]> {
    const seen = new Set<string>();
    const candidates: { id: string; referenceNumber: string | number | null | undefined }[] = [];
    for (let page = 0; page < MAX_PAGES; page += 1) {
      const json = await this.read({ query: candidateQuery(sent, page, PAGE_SIZE) }, question, 'list');
      const parsed = listSchema.safeParse(json);
      if (!parsed.success) throw new ReadFailed("Imagicle's recordings list has an unexpected shape");
      const fresh = parsed.data.recordings.filter((r) => !seen.has(r.id));
      for (const r of fresh) {
        seen.add(r.id);
        if (mayBePart(sent, r)) candidates.push({ id: r.id, referenceNumber: r.referenceNumber });
      }
      const total = parsed.data.totalCount ?? seen.size;
      // A server that ignores paging answers the same page again: nothing new ends the walk too.
      if (fresh.length === 0 || parsed.data.recordings.length < PAGE_SIZE || seen.size >= total) break;
    }
    const matches: Match[] = [];
    for (const candidate of candidates) {
      const json = await this.read({ id: candidate.id }, question, 'detail');
      if (json === undefined) continue; // gone since it was listed
      const detail = detailSchema.safeParse(json);
      if (!detail.success) throw new ReadFailed("Imagicle's recording detail has an unexpected shape");
      const mismatch = mismatchOf(sent, detail.data);
      if (mismatch === undefined) {
        matches.push({
          detail: detail.data,
          referenceNumber: detail.data.referenceNumber ?? candidate.referenceNumber,
        });
      } else {
        this.deps.logger.debug({ id: detail.data.id, mismatch }, 'reconciliation: a candidate is another recording');
      }
    }
    return matches;
  }

  /** One read, retried on failures that are not refusals; undefined for a detail's 404 (an unknown id). */
  private async read(
    target: { query: Record<string, string> } | { id: string },
    question: ReconcileQuestion,
    what: 'list' | 'detail',
    delays: readonly number[] = this.settings.readRetryDelaysMs ?? DEFAULT_READ_RETRY_DELAYS_MS,
  ): Promise<unknown> {
    let last = 'no answer';
    for (let attempt = 0; attempt <= delays.length; attempt += 1) {
      if (attempt > 0) await sleep(delays[attempt - 1] ?? 0, undefined, signalOption(question.signal));
      let status: number;
      let json: unknown;
      try {
        ({ status, json } = await this.deps.upstream.read(target, question.callerAuthorization, question.signal));
      } catch (error) {
        if (question.signal?.aborted) throw error;
        last = error instanceof GatewayError ? error.message : 'no answer';
        continue;
      }
      if (status === 200 && json !== undefined) {
        this.worked = true;
        return json;
      }
      if (what === 'detail' && status === 404) return undefined;
      if (REFUSALS.has(status)) {
        const perCaller = question.callerAuthorization !== undefined && (status === 401 || status === 403);
        throw new ReadsRefused(status, perCaller ? 'caller' : 'upstream');
      }
      last = status === 200 ? 'a body that is not JSON' : `HTTP ${status}`;
    }
    throw new ReadFailed(`Imagicle's ${what} read failed (${last}); the part's state in Imagicle is unknown`);
  }
}

function resultOf(outcome: Answer): ReconcileResult {
  if (outcome.kind === 'absent') return 'not_found';
  if (outcome.kind === 'unavailable') return 'unavailable';
  return outcome.others.length > 0 ? 'several' : 'found';
}

function digest(authorization: string): string {
  return createHash('sha256').update(authorization).digest('hex');
}

function signalOption(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal ? { signal } : {};
}
