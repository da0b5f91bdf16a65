/**
 * The circuit breaker of the distributed mode, one for every worker process:
 * the spool's rule (delivery/breaker.ts: stepAfter, openFor, allows), its
 * state in Redis.
 *   igw:breaker:open       present while open; expires when the backoff is over (PX), so no clock is compared
 *   igw:breaker:failures   trips in a row; absent or 0: closed, else half-open once `open` has expired
 *   igw:breaker:probe      the one probe's holder while half-open (SET NX PX): a dead holder's turn expires
 * Every operation is one or two commands on three keys: its cost does not
 * depend on the backlog.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import type { JobError } from '../delivery/job.js';
import type { Settlement } from '../delivery/job-life.js';
import { allows, openFor, stepAfter, type BreakerState } from '../delivery/breaker.js';
import type { RetryPolicy } from '../delivery/retry.js';

const OPEN = 'igw:breaker:open';
const FAILURES = 'igw:breaker:failures';
const PROBE = 'igw:breaker:probe';

/** Deletes the probe key only if it is still ours (a holder whose turn expired must not end the next one's). */
const RELEASE_PROBE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/** A probe turn held by this process: released when its delivery run ends. */
export interface ProbeTurn {
  release(): Promise<void>;
}

export class SharedBreaker {
  constructor(
    private readonly redis: Redis,
    private readonly policy: RetryPolicy,
    /** How long a probe turn lasts if its holder dies (its job is taken over after about as long). */
    private readonly probeTtlMs: number,
    private readonly log: Logger,
  ) {}

  /** The breaker's state now. Redis unreadable: closed (the queue itself cannot hand out jobs then anyway). */
  async state(): Promise<BreakerState> {
    try {
      const [open, failures] = await this.redis.mget(OPEN, FAILURES);
      if (open !== null) return 'open';
      return Number(failures ?? 0) > 0 ? 'half-open' : 'closed';
    } catch (error) {
      this.log.warn({ err: error }, 'cannot read the upstream breaker; deliveries go ahead');
      return 'closed';
    }
  }

  /** Whether some process holds the probe turn now. */
  async probing(): Promise<boolean> {
    return (await this.redis.exists(PROBE)) === 1;
  }

  /**
   * The one probe turn, if the breaker is half-open and nobody holds it; undefined otherwise. The rule's "one
   * delivery at a time while half-open" (allows), across processes: the turn is the delivery under way.
   */
  async tryProbe(): Promise<ProbeTurn | undefined> {
    if (!allows(await this.state(), 0)) return undefined;
    const token = randomUUID();
    const taken = await this.redis.set(PROBE, token, 'PX', this.probeTtlMs, 'NX');
    if (taken !== 'OK') return undefined;
    return {
      release: async () => {
        await this.redis.eval(RELEASE_PROBE, 1, PROBE, token).catch(() => undefined);
      },
    };
  }

  /** What a run that attempted a delivery ended with (the rule: stepAfter). */
  async record(settled: Settlement, lastError: JobError | undefined): Promise<BreakerState> {
    const before = await this.state();
    const step = stepAfter(settled, lastError, before);
    if (step === 'close') {
      if (before !== 'closed') {
        await this.redis.del(OPEN, FAILURES);
        this.log.info('Imagicle takes uploads again: the breaker is closed');
      }
      return 'closed';
    }
    if (step === 'none') return before;
    // Only one of the deliveries failing at once trips it: the others find it open (NX), as stepAfter would.
    const provisional = Math.max(1, settled.kind === 'retry' ? settled.delayMs : 0);
    const tripped = await this.redis.set(OPEN, 'tripping', 'PX', provisional, 'NX');
    if (tripped !== 'OK') return 'open';
    const failures = await this.redis.incr(FAILURES);
    const ms = openFor(this.policy, failures, settled);
    await this.redis.set(OPEN, new Date(Date.now() + ms).toISOString(), 'PX', ms);
    this.log.warn(
      { failures, openMs: ms, status: lastError?.status, code: lastError?.code },
      'Imagicle refuses uploads: deliveries wait, one probe after the backoff',
    );
    return 'open';
  }
}
