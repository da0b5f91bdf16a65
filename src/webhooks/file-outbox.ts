/**
 * The webhook outbox of the one-process gateway: a file per delivery under
 * SPOOL_DIR/webhooks, each written durably (temp → fsync → rename → fsync
 * the folder), all of them held in memory as well. After a kill -9 a file is
 * either its old or its new version; a delivery that was being sent is still
 * pending and is sent again (webhook-id unchanged: the receiver drops the
 * duplicate).
 */
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir, isTempName, writeFileDurable } from '../delivery/durable.js';
import type { WebhookDelivery } from './delivery.js';
import type { WebhookOutbox } from './outbox.js';

export class FileOutbox implements WebhookOutbox {
  private readonly deliveries = new Map<string, WebhookDelivery>();
  private readonly byJob = new Map<string, Set<string>>();
  /** Deliveries handed to a dispatcher, until when (ms). */
  private readonly leases = new Map<string, number>();

  private constructor(readonly dir: string) {}

  /** Opens (creates) the folder and reads every delivery in it; unreadable files are set aside, not fatal. */
  static async open(dir: string, onProblem: (file: string, error: unknown) => void = () => undefined) {
    const outbox = new FileOutbox(dir);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    for (const name of await readdir(dir)) {
      const file = path.join(dir, name);
      if (isTempName(name)) {
        await unlink(file).catch(() => undefined);
        continue;
      }
      if (!name.endsWith('.json')) continue;
      try {
        const delivery = JSON.parse(await readFile(file, 'utf8')) as WebhookDelivery;
        if (delivery.version !== 1 || `${delivery.id}.json` !== name) throw new Error('not a webhook delivery');
        outbox.remember(delivery);
      } catch (error) {
        onProblem(file, error);
      }
    }
    return outbox;
  }

  private fileOf(id: string): string {
    return path.join(this.dir, `${id}.json`);
  }

  private remember(d: WebhookDelivery): void {
    this.deliveries.set(d.id, d);
    let ids = this.byJob.get(d.jobId);
    if (!ids) this.byJob.set(d.jobId, (ids = new Set()));
    ids.add(d.id);
  }

  async add(deliveries: readonly WebhookDelivery[]): Promise<WebhookDelivery[]> {
    const added: WebhookDelivery[] = [];
    for (const d of deliveries) {
      if (this.deliveries.has(d.id)) continue;
      await writeFileDurable(this.fileOf(d.id), JSON.stringify(d));
      this.remember(structuredClone(d));
      added.push(d);
    }
    return added;
  }

  async claimDue(now: number, limit: number, leaseMs: number): Promise<WebhookDelivery[]> {
    const due: WebhookDelivery[] = [];
    for (const d of this.deliveries.values()) {
      if (d.state !== 'pending') continue;
      if (Date.parse(d.nextAttemptAt ?? d.createdAt) > now) continue;
      if ((this.leases.get(d.id) ?? 0) > now) continue;
      due.push(d);
    }
    due.sort((a, b) => Date.parse(a.nextAttemptAt ?? a.createdAt) - Date.parse(b.nextAttemptAt ?? b.createdAt));
    const taken = due.slice(0, limit);
    for (const d of taken) this.leases.set(d.id, now + leaseMs);
    return taken.map((d) => structuredClone(d));
  }

  async save(delivery: WebhookDelivery): Promise<void> {
    await writeFileDurable(this.fileOf(delivery.id), JSON.stringify(delivery));
    this.remember(structuredClone(delivery));
    this.leases.delete(delivery.id);
  }

  async get(id: string): Promise<WebhookDelivery | undefined> {
    const d = this.deliveries.get(id);
    return d && structuredClone(d);
  }

  async forJob(jobId: string): Promise<WebhookDelivery[]> {
    const ids = [...(this.byJob.get(jobId) ?? [])];
    return ids
      .map((id) => this.deliveries.get(id))
      .filter((d): d is WebhookDelivery => d !== undefined)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt))
      .map((d) => structuredClone(d));
  }

  async nextDueAt(): Promise<number | undefined> {
    let next: number | undefined;
    for (const d of this.deliveries.values()) {
      if (d.state !== 'pending') continue;
      const at = Math.max(Date.parse(d.nextAttemptAt ?? d.createdAt), this.leases.get(d.id) ?? 0);
      if (next === undefined || at < next) next = at;
    }
    return next;
  }

  async oldestPendingAt(): Promise<number | undefined> {
    let oldest: number | undefined;
    for (const d of this.deliveries.values()) {
      if (d.state !== 'pending') continue;
      const at = Date.parse(d.createdAt);
      if (oldest === undefined || at < oldest) oldest = at;
    }
    return oldest;
  }

  async prune(before: number): Promise<number> {
    let removed = 0;
    for (const d of [...this.deliveries.values()]) {
      if (d.state === 'pending' || Date.parse(d.updatedAt) >= before) continue;
      await unlink(this.fileOf(d.id)).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
      this.deliveries.delete(d.id);
      this.byJob.get(d.jobId)?.delete(d.id);
      if (this.byJob.get(d.jobId)?.size === 0) this.byJob.delete(d.jobId);
      removed++;
    }
    if (removed > 0) await fsyncDir(this.dir);
    return removed;
  }

  async close(): Promise<void> {}
}
