/**
 * A queue of faults, consumed one per upload request, in order.
 * A fault with `count: n` applies to the next n uploads.
 */
import { z } from 'zod';

const faultSchema = z.strictObject({
  /** Answer this status (and `body`) instead of importing the recording. */
  status: z.number().int().min(200).max(599).optional(),
  /** Body sent with `status`; JSON unless `contentType` is given and `body` is a string. */
  body: z.unknown().optional(),
  /** Content-Type for a string `body` sent as is (e.g. an HTML error page from a proxy). */
  contentType: z.string().min(1).optional(),
  /** How many consecutive uploads this fault applies to. */
  count: z.number().int().min(1).default(1),
  /** Delay before the response headers are sent (alone: a slow but normal import). */
  delayMs: z.number().int().min(0).max(600_000).optional(),
  /** Read the whole body, then destroy the socket instead of answering. */
  reset: z.boolean().optional(),
  /** Destroy the socket once this many request body bytes have been read. */
  resetAfterBodyBytes: z.number().int().min(0).optional(),
  /** Seconds, sent as Retry-After with `status`. */
  retryAfter: z.number().int().min(0).optional(),
  /**
   * Import the recording as usual, then never answer (`hang`: the client's timeout ends it) or drop the
   * connection (`reset`): an ambiguous attempt whose recording IS stored, for the reconciliation tests.
   */
  afterStore: z.enum(['hang', 'reset']).optional(),
});

export type FaultInput = z.input<typeof faultSchema>;
export type Fault = Omit<z.output<typeof faultSchema>, 'count'>;
export interface PendingFault {
  fault: Fault;
  remaining: number;
}

/** True when the fault answers in place of the import (status or reset); false for a delay alone. */
export function replacesImport(fault: Fault): boolean {
  return fault.status !== undefined || fault.reset === true || fault.resetAfterBodyBytes !== undefined;
}

export class FaultInjector {
  private readonly queue: PendingFault[] = [];

  /** Queues one fault or several; throws a ZodError when one is invalid (nothing is queued then). */
  add(input: FaultInput | FaultInput[]): void {
    const parsed = Array.isArray(input) ? z.array(faultSchema).parse(input) : [faultSchema.parse(input)];
    for (const { count, ...fault } of parsed) this.queue.push({ fault, remaining: count });
  }

  /** The fault for the next upload, if any. */
  take(): Fault | undefined {
    const head = this.queue[0];
    if (!head) return undefined;
    head.remaining -= 1;
    if (head.remaining <= 0) this.queue.shift();
    return head.fault;
  }

  pending(): PendingFault[] {
    return this.queue.map((p) => ({ fault: { ...p.fault }, remaining: p.remaining }));
  }

  clear(): void {
    this.queue.length = 0;
  }
}
