/**
 * The last word on shutdown: if a graceful close has not ended the process by `ms`, it ends anyway.
 *
 * process.exit() is not enough for that: it waits for libuv's worker threads, and a thread stuck in a blocking
 * system call (an open() of a FIFO, a hung network share) never returns, so the process would hang in exit
 * (docs/security.md, finding #4). The backstop kills the children, then restores the signal's default action and
 * raises it again: the kernel ends the process at once, with the status a process killed by that signal has.
 */
import type { Logger } from './logger.js';
import { killAllChildren } from './media/process.js';

/** Added to SHUTDOWN_GRACE_MS: time for close() to abort what is left and clean up. */
export const BACKSTOP_EXTRA_MS = 15_000;

export function armBackstop(signal: NodeJS.Signals, ms: number, logger?: Logger): void {
  const timer = setTimeout(() => {
    logger?.error({ signal, afterMs: ms }, 'shutdown did not finish in time: ending the process now');
    killAllChildren();
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
    // Not reached unless the signal was ignored by the parent: exit as well as one can.
    process.exit(1);
  }, ms);
  timer.unref();
}
