/**
 * Disk reservations: before any decoding, a job reserves the bytes its
 * output will take (computed from the probe, the target format and any
 * offsets: bounds.ts), in the folder it writes to (the spool, or TMP_DIR).
 *
 * A ledger per folder keeps what is reserved and not yet written. The check
 * and the booking happen in one synchronous step after the free space was
 * read, so concurrent uploads cannot all pass the check and then fill the
 * disk together. A job's reservations are released when it ends (success or
 * failure): by then what it wrote is counted by the spool, or deleted.
 */
import { statfs } from 'node:fs/promises';
import { GatewayError, tooLarge } from '../errors.js';

/** Retry-After for a full disk: space comes back when jobs are delivered or cleaned up. */
const DISK_RETRY_AFTER_SECONDS = 60;

export function insufficientStorage(message: string, cause?: unknown): GatewayError {
  return new GatewayError('INSUFFICIENT_STORAGE', message, { cause, retryAfterSeconds: DISK_RETRY_AFTER_SECONDS });
}

export interface LedgerOptions {
  /** Named in messages: "the spool", "the work folder". */
  label: string;
  /** Free space kept on the file system (MIN_FREE_DISK_BYTES). */
  minFreeBytes: number;
  /** An extra, logical bound: what the folder may still take (SPOOL_MAX_BYTES minus what the spool holds). */
  room?: () => number;
  /** The most the folder can ever take (SPOOL_MAX_BYTES); the file system's size when unset. */
  ceiling?: () => number;
}

export class DiskLedger {
  private reservedBytes = 0;

  constructor(
    readonly dir: string,
    private readonly options: LedgerOptions,
  ) {}

  reserved(): number {
    return this.reservedBytes;
  }

  /**
   * Books `bytes`, or throws: 413 when they could never fit (more than the folder's ceiling), 507 with
   * Retry-After when they do not fit now. Resolves to the release function (idempotent).
   */
  async reserve(bytes: number, what: string): Promise<() => void> {
    const need = Math.max(0, Math.ceil(bytes));
    const fs = await statfs(this.dir);
    // From here to the booking nothing awaits: the check and the booking are one step.
    const free = fs.bavail * fs.bsize - this.options.minFreeBytes;
    const size = fs.blocks * fs.bsize - this.options.minFreeBytes;
    const ceiling = Math.min(size, this.options.ceiling?.() ?? Infinity);
    if (need > ceiling) {
      const subject = `${what.charAt(0).toUpperCase()}${what.slice(1)}`;
      throw tooLarge(
        `${subject} would need ${mb(need)} of disk, ` +
          `more than ${this.options.label} can ever hold (${mb(Math.max(0, ceiling))})`,
      );
    }
    const available = Math.min(free, this.options.room?.() ?? Infinity) - this.reservedBytes;
    if (need > available) {
      throw insufficientStorage(
        `The gateway has not enough disk space for this recording now ` +
          `(${what} needs ${mb(need)}, ${mb(Math.max(0, available))} free in ${this.options.label}); retry later`,
      );
    }
    this.reservedBytes += need;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.reservedBytes -= need;
    };
  }

  /** A set of reservations for one job, released together. */
  scope(): DiskScope {
    const releases: Array<() => void> = [];
    return {
      reserve: async (bytes, what) => {
        releases.push(await this.reserve(bytes, what));
      },
      releaseAll: () => {
        for (const release of releases.splice(0)) release();
      },
    };
  }
}

/** What the media pipeline sees: reserve, per job. */
export interface DiskBudget {
  reserve(bytes: number, what: string): Promise<void>;
}

export interface DiskScope extends DiskBudget {
  releaseAll(): void;
}

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(bytes < 1e7 ? 1 : 0)} MB`;
