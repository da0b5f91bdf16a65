/**
 * The process slots: at most `concurrency` ffmpeg/ffprobe processes at once, at
 * most `queueLimit` jobs waiting, and two lanes so that small uploads are not
 * starved behind long ones.
 *
 * Scheduling (see docs/security.md, "Overload"):
 * - A job is "long" when its upload is at least `longJobBytes`, else "short".
 *   The upload's size is known before any process runs and is a fair proxy
 *   for the decoding work.
 * - Long jobs may hold at most `concurrency - 1` slots (1 when concurrency is
 *   1), so with two or more slots one is always left for short jobs.
 * - When a slot frees, the oldest waiting job that may use it starts: arrival
 *   order within each lane, so neither lane starves the other.
 * - Every process of a job goes through the slots; only the job's first
 *   request for a slot can be refused for a full waiting line, so a job that has
 *   started is never failed half-way by overload.
 */
import { busy, GatewayError } from '../errors.js';
import type { ProcessGate } from '../media/process.js';

export type Lane = 'short' | 'long';

export interface ProcessSlotsOptions {
  concurrency: number;
  queueLimit: number;
  longJobBytes: number;
}

export interface ProcessSlotStats {
  concurrency: number;
  queueLimit: number;
  running: number;
  runningLong: number;
  waiting: number;
  waitingLong: number;
  /** Jobs refused with 503 since start. */
  refused: number;
}

interface Waiter {
  lane: Lane;
  start: () => void;
}

const RETRY_AFTER_MAX_SECONDS = 300;

export class ProcessSlots {
  private running = 0;
  private runningLong = 0;
  private readonly waiting: Waiter[] = [];
  private refused = 0;
  /** Moving average of how long a slot is held, for Retry-After. */
  private averageHoldMs = 2000;

  constructor(readonly options: ProcessSlotsOptions) {
    if (options.concurrency < 1) throw new RangeError('concurrency must be at least 1');
  }

  private get longCap(): number {
    return Math.max(1, this.options.concurrency - 1);
  }

  laneFor(uploadBytes: number): Lane {
    return uploadBytes >= this.options.longJobBytes ? 'long' : 'short';
  }

  /** True when a new job would be refused now: the check made before reading an upload. */
  isFull(): boolean {
    return this.waiting.length >= this.options.queueLimit && !this.hasFreeSlot('short');
  }

  /** The 503 answer for a refused job. */
  busyError(): GatewayError {
    this.refused += 1;
    return busy(
      `The gateway is busy (${this.running} conversion${this.running === 1 ? '' : 's'} running, ${this.waiting.length} waiting); retry later`,
      this.retryAfterSeconds(),
    );
  }

  /** A rough wait for the queue to drain one round: average slot time × waiting / slots. */
  retryAfterSeconds(): number {
    const rounds = (this.waiting.length + 1) / this.options.concurrency;
    return Math.min(RETRY_AFTER_MAX_SECONDS, Math.max(1, Math.ceil((this.averageHoldMs * rounds) / 1000)));
  }

  stats(): ProcessSlotStats {
    return {
      concurrency: this.options.concurrency,
      queueLimit: this.options.queueLimit,
      running: this.running,
      runningLong: this.runningLong,
      waiting: this.waiting.length,
      waitingLong: this.waiting.filter((w) => w.lane === 'long').length,
      refused: this.refused,
    };
  }

  /**
   * The gate of one job. `uploadBytes` is read when the job first asks for a
   * slot (after its upload has been received).
   */
  gateFor(uploadBytes: () => number): ProcessGate {
    let lane: Lane | undefined;
    return {
      acquire: (signal) => {
        const first = lane === undefined;
        lane ??= this.laneFor(uploadBytes());
        return this.acquire(lane, signal, first);
      },
    };
  }

  /**
   * A gate that waits and never refuses: for work the gateway took on itself (a watched folder's file), which
   * shares the slots with uploads but is not a request to turn away with a 503.
   */
  patientGateFor(bytes: number): ProcessGate {
    const lane = this.laneFor(bytes);
    return { acquire: (signal) => this.acquire(lane, signal, false) };
  }

  /** Waits for a slot in the lane; resolves with its release function. */
  acquire(lane: Lane, signal: AbortSignal | undefined, mayRefuse = true): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    // After every dispatch no waiter can use a free slot, so a free slot here is this job's to take.
    if (this.hasFreeSlot(lane)) return Promise.resolve(this.take(lane));
    if (mayRefuse && this.waiting.length >= this.options.queueLimit) return Promise.reject(this.busyError());
    return new Promise<() => void>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.waiting.indexOf(waiter);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(abortReason(signal));
        // A long waiter leaving may let a short one behind it start.
        this.dispatch();
      };
      const waiter: Waiter = {
        lane,
        start: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.take(lane));
        },
      };
      this.waiting.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private hasFreeSlot(lane: Lane): boolean {
    if (this.running >= this.options.concurrency) return false;
    return lane === 'short' || this.runningLong < this.longCap;
  }

  private take(lane: Lane): () => void {
    this.running += 1;
    if (lane === 'long') this.runningLong += 1;
    const since = performance.now();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running -= 1;
      if (lane === 'long') this.runningLong -= 1;
      this.averageHoldMs = this.averageHoldMs * 0.8 + (performance.now() - since) * 0.2;
      this.dispatch();
    };
  }

  /** Starts the oldest waiters that may use the free slots. */
  private dispatch(): void {
    for (let i = 0; i < this.waiting.length && this.running < this.options.concurrency;) {
      const waiter = this.waiting[i]!;
      if (this.hasFreeSlot(waiter.lane)) {
        this.waiting.splice(i, 1);
        waiter.start();
      } else {
        i += 1;
      }
    }
  }
}

function abortReason(signal: AbortSignal | undefined): unknown {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new Error('aborted while waiting for a slot');
}
