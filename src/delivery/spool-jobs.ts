/** The jobs API over the spool (DELIVERY=wait): reads from its indexes, writes under the job's claim. */
import { GatewayError } from '../errors.js';
import { JOB_ID_RE, ownedBy, type JobsBackend } from './jobs-backend.js';
import type { JobRecord } from './job.js';
import type { DeliveryService } from './service.js';

const CLAIM_WAIT_MS = 1000;
const CLAIM_POLL_MS = 50;

export function spoolJobsBackend(
  delivery: Pick<DeliveryService, 'spool' | 'life' | 'wake' | 'waveforms'>,
): JobsBackend {
  const { spool, life } = delivery;

  /**
   * Claims a job, waiting a moment for a run that is finishing: the worker releases a job just after its last
   * journal write, so a client that saw "delivered" or "failed" may come before the release.
   */
  const claimSoon = async (id: string): Promise<boolean> => {
    for (let waited = 0; ; waited += CLAIM_POLL_MS) {
      if (spool.claim(id)) return true;
      if (waited >= CLAIM_WAIT_MS) return false;
      await new Promise((resolve) => setTimeout(resolve, CLAIM_POLL_MS));
    }
  };
  const get = (id: string, owner: string | undefined): JobRecord | undefined =>
    JOB_ID_RE.test(id) ? ownedBy(spool.get(id), owner) : undefined;
  const underClaim = async <T>(
    id: string,
    owner: string | undefined,
    busyMessage: string,
    fn: (job: JobRecord) => Promise<T>,
  ): Promise<T> => {
    if (!get(id, owner)) throw new GatewayError('NOT_FOUND', `No job ${id}`);
    if (!(await claimSoon(id))) throw new GatewayError('CONFLICT', busyMessage);
    try {
      // The record as it is now (a run that was finishing may have replaced or removed it).
      const job = spool.get(id);
      if (!job) throw new GatewayError('NOT_FOUND', `No job ${id}`);
      return await fn(job);
    } finally {
      spool.release(id);
    }
  };

  return {
    page: (query) => Promise.resolve(spool.page(query)),
    heldBytes: (owner) => Promise.resolve(owner === undefined ? spool.usedBytes() : spool.usedBytesOf(owner)),
    get: (id, owner) => Promise.resolve(get(id, owner)),
    retry: async (id, owner) => {
      const job = await underClaim(id, owner, `Job ${id} is being worked on`, async (job) => {
        life.reopen(job);
        await spool.save(job);
        return job;
      });
      delivery.wake();
      return job;
    },
    remove: (id, owner) =>
      underClaim(id, owner, `Job ${id} is being delivered right now; try again in a moment`, () => spool.remove(id)),
    ...(delivery.waveforms
      ? {
          waveform: (job: JobRecord, channel: number, signal: AbortSignal) =>
            delivery.waveforms!.picture(job, channel, signal),
        }
      : {}),
  };
}
