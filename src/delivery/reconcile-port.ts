/**
 * The question asked of Imagicle before a part is sent again after an
 * attempt whose outcome is unknown (its whole body went out and no answer
 * came, a 500/502/504, or a crash mid-attempt): "do you already hold it?".
 * The delivery procedure (run-job.ts) asks; src/imagicle/reconcile.ts
 * answers with Imagicle's read endpoints.
 */

type ReconcileOutcome =
  /** Imagicle holds the part: it is marked delivered with this id, nothing is sent. `others`: duplicates found. */
  | { kind: 'found'; id: string; others: string[] }
  /** Imagicle does not hold it: it is sent. */
  | { kind: 'absent' }
  /**
   * Imagicle could not be asked. `transient`: the read failed this time (no answer, a 5xx): the part is kept
   * uncertain and asked about again later. Otherwise reads are refused (401/403/404/405, an older server): today's
   * rule applies (held, or sent again with RETRY_AMBIGUOUS=true).
   */
  | { kind: 'unavailable'; reason: string; transient?: boolean }
  /**
   * Not askable within this run: Imagicle may go on importing the last attempt until `at` (epoch ms), later than
   * the question's `notAfter`. Nothing was read; the part stays uncertain and is asked about from `at` on.
   */
  | { kind: 'later'; at: number };

interface ReconcileQuestion {
  /** The metadata sent for this part (exact duration, start shifted for split parts, notes marked). */
  metadata: Record<string, unknown>;
  /** The caller's Authorization kept on the job (forwarded uploads); undefined: the gateway's own credentials. */
  callerAuthorization: string | undefined;
  /** When the ambiguous attempt began (ISO): Imagicle may still be processing it until its deadline. */
  attemptStartedAt: string | undefined;
  /**
   * The latest instant (epoch ms) this run may wait until before it asks: its retry budget (RETRY_MAX_TOTAL_MS).
   * Undefined: wait for the attempt's deadline whatever it is.
   */
  notAfter?: number | undefined;
  signal: AbortSignal | undefined;
}

export interface Reconciler {
  check(question: ReconcileQuestion): Promise<ReconcileOutcome>;
}
