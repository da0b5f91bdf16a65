/**
 * Where prepared jobs wait while the breaker is open (shared-breaker.ts),
 * without being fetched again: BullMQ's own delayed set, at a time far in
 * the future (PARK_SHIFT_MS after the job's acceptance). So:
 * - a parked job costs nothing while it waits: no worker fetches it, and
 *   the delayed set is a sorted set (O(log N) in, O(log N) out);
 * - parked jobs are ordered by acceptance, and the oldest come back first
 *   (ZRANGEBYSCORE over the parked range, then Job.promote);
 * - nothing outside BullMQ's job states has to be kept consistent: a
 *   crash between two steps leaves the job delayed (parked) or in the
 *   wait list, both of which BullMQ already keeps.
 *
 * A promoted job goes to the wait list (priority 0), which workers take
 * before the prioritized set where new uploads wait to be prepared
 * (intake.ts adds them with PREPARE_PRIORITY; BullMQ's moveToActive takes
 * `wait` first, then `prioritized`): deliveries of the oldest go first.
 */
import { Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { DistributedJob } from './job-data.js';

/** Parked jobs are delayed until this long after their acceptance: later than any real retry. */
const PARK_SHIFT_MS = 100 * 365 * 86_400_000;
/** BullMQ's delayed score is the due time × 0x1000 (plus a counter): the parked range starts here. */
const PARKED_MIN_SCORE = PARK_SHIFT_MS * 0x1000;

/** New uploads wait in BullMQ's prioritized set (FIFO within one priority), behind promoted deliveries. */
export const PREPARE_PRIORITY = 1;

/** A job parked by this module (BullMQ's `delay` of a delayed job is what it was delayed by). */
export function isParked(bjob: Job<DistributedJob>): boolean {
  return bjob.delay >= PARK_SHIFT_MS / 2;
}

export class ParkingLot {
  /** BullMQ's keys, read here only: every write goes through BullMQ's own commands. */
  private readonly delayedKey: string;
  private readonly waitKey: string;

  constructor(
    private readonly queue: Queue<DistributedJob>,
    private readonly redis: Redis,
  ) {
    this.delayedKey = queue.toKey('delayed');
    this.waitKey = queue.toKey('wait');
  }

  /** Parks a job this worker holds (its lock `token`); the caller then throws DelayedError, as after moveToDelayed. */
  async park(bjob: Job<DistributedJob>, token: string): Promise<void> {
    // Promoted, it must land in the wait list (taken first), not among the uploads to prepare.
    if (bjob.priority !== 0) await bjob.changePriority({ priority: 0 });
    await bjob.moveToDelayed(PARK_SHIFT_MS + Date.parse(bjob.data.createdAt), token);
  }

  /** Jobs in the wait list: promoted, not yet taken by a worker. */
  async waiting(): Promise<number> {
    return this.redis.llen(this.waitKey);
  }

  /**
   * Moves up to `count` of the oldest parked jobs to the wait list, oldest first; answers how many moved. A job
   * another process promoted (or removed) in the meantime is skipped.
   */
  async release(count: number): Promise<number> {
    if (count <= 0) return 0;
    const ids = await this.redis.zrangebyscore(this.delayedKey, PARKED_MIN_SCORE, '+inf', 'LIMIT', 0, count);
    let moved = 0;
    for (const id of ids) {
      // promote() needs a Job only for its id: no read of the job's data.
      const handle = new Job<DistributedJob>(this.queue, '', {} as DistributedJob, {}, id);
      try {
        await handle.promote();
        moved += 1;
      } catch {
        // No longer delayed: another process promoted it, or it was removed.
      }
    }
    return moved;
  }
}
