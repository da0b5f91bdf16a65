/**
 * Brings parked jobs (parking.ts) back as the shared breaker allows, in
 * every worker process, on a short timer and after each job this process
 * finishes (kicks are merged: one pass at a time):
 * - closed: keeps the wait list topped up with the oldest parked jobs, up to
 *   a window: every slot of every worker finds a delivery (the ramp-up to
 *   SPOOL_CONCURRENCY is immediate), and a breaker that opens again sends
 *   back at most the window, not the backlog;
 * - half-open: when nobody probes and nothing waits, the oldest parked job
 *   comes back alone: it is the probe;
 * - open: nothing.
 * Each pass is a few commands of O(log N) on the delayed set.
 */
import type { Logger } from '../logger.js';
import type { ParkingLot } from './parking.js';
import type { SharedBreaker } from './shared-breaker.js';

/** How often a worker process looks (the breaker's half-open moment is seen within this). */
const FEED_EVERY_MS = 250;

export class Feeder {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private again = false;
  private closed = false;

  constructor(
    private readonly lot: ParkingLot,
    private readonly breaker: SharedBreaker,
    /** Promoted jobs kept waiting for a slot at most (all processes together see the same wait list). */
    private readonly window: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.kick(), FEED_EVERY_MS);
    this.timer.unref();
  }

  /** Asks for a pass; a kick during a pass makes one more after it. */
  kick(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.pass()
      .catch((error: unknown) => this.log.warn({ err: error }, 'bringing parked jobs back failed; tried again'))
      .finally(() => {
        this.running = false;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async pass(): Promise<void> {
    const state = await this.breaker.state();
    if (state === 'open') return;
    const waiting = await this.lot.waiting();
    if (state === 'half-open') {
      if (waiting > 0 || (await this.breaker.probing())) return;
      const moved = await this.lot.release(1);
      if (moved > 0) this.log.info('the breaker is half-open: the oldest parked job goes out as the probe');
      return;
    }
    await this.lot.release(this.window - waiting);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
  }
}
