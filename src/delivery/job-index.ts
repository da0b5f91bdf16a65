/**
 * In-memory indexes over a store's jobs, kept as jobs change, so that no
 * operation costs the size of the backlog: paging newest first per owner,
 * counts per state per owner, lookups by pbxCallId, phone number, username
 * and Imagicle id, and the worker's due order (due-queue.ts).
 */
import { JOB_STATES, type JobDoor, type JobRecord, type JobState } from './job.js';

export interface JobQuery {
  /** undefined: every owner (an operator). */
  owner: string | undefined;
  state?: JobState | undefined;
  door?: JobDoor | undefined;
  /** Exact pbxCallId, phone number (either party), username or Imagicle id. */
  q?: string | undefined;
  /** Start time of the recording, inclusive bounds (epoch ms). */
  fromMs?: number | undefined;
  toMs?: number | undefined;
  limit: number;
  /** Opaque: where the previous page stopped. */
  cursor?: string | undefined;
}

export interface JobPage {
  jobs: JobRecord[];
  nextCursor: string | null;
  counts: Record<JobState, number>;
}

export const emptyCounts = (): Record<JobState, number> =>
  Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;

const ALL = '\u0000all';

/** The words a job is found by (q): exact values, trimmed, each once. */
export function searchKeysOf(job: JobRecord): string[] {
  const m = job.metadata;
  // Plain pushes, no intermediate arrays: the spool indexes every job at start-up (20,000 in issue 21's bench).
  const keys: string[] = [];
  const add = (value: unknown): void => {
    if (typeof value !== 'string') return;
    const k = value.trim();
    if (k !== '' && !keys.includes(k)) keys.push(k);
  };
  add(m.pbxCallId);
  add(m.localParty?.phoneNumber);
  add(m.localParty?.username);
  add(m.remoteParty?.phoneNumber);
  for (const part of job.parts) {
    const json = part.upstream?.json as { id?: unknown } | undefined;
    if (part.state === 'delivered' && json && (typeof json.id === 'string' || typeof json.id === 'number')) {
      add(String(json.id));
    }
  }
  return keys;
}

interface Entry {
  owner: string;
  state: JobState;
  keys: string[];
  /** Position in creation order (a sequence number: the cursor). */
  seq: number;
}

export class JobIndex {
  private seq = 0;
  private readonly entries = new Map<string, Entry>();
  /** Per owner (and ALL): ids in creation order; removed ids are skipped and compacted lazily. */
  private readonly orders = new Map<string, { ids: string[]; seqs: number[]; dead: number }>();
  private readonly counts = new Map<string, Record<JobState, number>>();
  /**
   * Ids per search key. Most keys (a pbxCallId, a caller's number) name one job: that id is held as is, and a Set
   * only once a second job shares the key. 20,000 one-entry Sets cost ~8 MB and a quarter of the start-up's
   * indexing time (issue 21).
   */
  private readonly byKey = new Map<string, string | Set<string>>();

  /** Adds a job (in creation order: callers add oldest first) or updates what changed. */
  upsert(job: JobRecord): void {
    const owner = job.owner ?? '';
    const entry = this.entries.get(job.id);
    const keys = searchKeysOf(job);
    if (!entry) {
      const seq = ++this.seq;
      this.entries.set(job.id, { owner, state: job.state, keys, seq });
      for (const o of [owner, ALL]) {
        const order = this.orders.get(o) ?? { ids: [], seqs: [], dead: 0 };
        order.ids.push(job.id);
        order.seqs.push(seq);
        this.orders.set(o, order);
      }
      this.count(owner, job.state, 1);
      for (const k of keys) this.addKey(k, job.id);
      return;
    }
    if (entry.state !== job.state) {
      this.count(owner, entry.state, -1);
      this.count(owner, job.state, 1);
      entry.state = job.state;
    }
    if (keys.length !== entry.keys.length || keys.some((k, i) => k !== entry.keys[i])) {
      for (const k of entry.keys) this.removeKey(k, job.id);
      for (const k of keys) this.addKey(k, job.id);
      entry.keys = keys;
    }
  }

  remove(id: string): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    this.count(entry.owner, entry.state, -1);
    for (const k of entry.keys) this.removeKey(k, id);
    for (const o of [entry.owner, ALL]) {
      const order = this.orders.get(o);
      if (order) order.dead += 1;
    }
  }

  /** Counts per state for an owner (undefined: everyone). */
  countsOf(owner: string | undefined): Record<JobState, number> {
    return { ...(this.counts.get(owner ?? ALL) ?? emptyCounts()) };
  }

  /** Ids with this search key, any owner. */
  withKey(key: string): Iterable<string> {
    const ids = this.byKey.get(key.trim());
    return ids === undefined ? [] : typeof ids === 'string' ? [ids] : ids;
  }

  /**
   * One page, newest first. Costs the page plus the jobs skipped by filters; a search (q) costs only the
   * jobs it names.
   */
  page(query: JobQuery, get: (id: string) => JobRecord | undefined): JobPage {
    const owner = query.owner ?? ALL;
    const before = query.cursor !== undefined ? Number.parseInt(query.cursor, 36) : Infinity;
    const matches = (job: JobRecord): boolean =>
      (query.door === undefined || (job.door ?? 'http') === query.door) &&
      inRange(job, query.fromMs, query.toMs) &&
      (query.owner === undefined || job.owner === query.owner);
    const filtered =
      query.q !== undefined || query.door !== undefined || query.fromMs !== undefined || query.toMs !== undefined;

    let candidates: Iterable<[string, number]>;
    if (query.q !== undefined) {
      const ids = [...this.withKey(query.q)]
        .map((id) => [id, this.entries.get(id)?.seq ?? 0] as [string, number])
        .filter(([, seq]) => seq > 0)
        .sort((a, b) => b[1] - a[1]);
      candidates = ids;
    } else {
      candidates = this.newestFirst(owner);
    }
    const jobs: JobRecord[] = [];
    const counts = filtered ? emptyCounts() : this.countsOf(query.owner);
    let nextCursor: string | null = null;
    for (const [id, seq] of candidates) {
      const job = get(id);
      if (!job || !matches(job)) continue;
      if (filtered) counts[job.state] += 1;
      if (seq >= before || (query.state !== undefined && job.state !== query.state)) continue;
      if (jobs.length === query.limit) {
        nextCursor = (jobs.length > 0 ? this.entries.get(jobs.at(-1)!.id)!.seq : seq).toString(36);
        // Counts under a filter need every match; otherwise the page is complete.
        if (!filtered) break;
        continue;
      }
      jobs.push(job);
    }
    return { jobs, nextCursor, counts };
  }

  /** The oldest job (any owner) that `accept` takes: what `at` says of it. Skips from the oldest end. */
  oldest(accept: (id: string) => boolean, at: (id: string) => string | undefined): string | undefined {
    const order = this.orders.get(ALL);
    if (!order) return undefined;
    for (const id of order.ids) if (this.entries.has(id) && accept(id)) return at(id);
    return undefined;
  }

  private *newestFirst(owner: string): Generator<[string, number]> {
    const order = this.orders.get(owner);
    if (!order) return;
    this.compact(order);
    for (let i = order.ids.length - 1; i >= 0; i--) {
      const id = order.ids[i]!;
      if (this.entries.has(id)) yield [id, order.seqs[i]!];
    }
  }

  private compact(order: { ids: string[]; seqs: number[]; dead: number }): void {
    if (order.dead < 1024 || order.dead < order.ids.length / 4) return;
    const ids: string[] = [];
    const seqs: number[] = [];
    for (let i = 0; i < order.ids.length; i++) {
      const entry = this.entries.get(order.ids[i]!);
      if (entry && entry.seq === order.seqs[i]) {
        ids.push(order.ids[i]!);
        seqs.push(order.seqs[i]!);
      }
    }
    order.ids = ids;
    order.seqs = seqs;
    order.dead = 0;
  }

  private count(owner: string, state: JobState, delta: number): void {
    for (const o of [owner, ALL]) {
      const counts = this.counts.get(o) ?? emptyCounts();
      counts[state] += delta;
      this.counts.set(o, counts);
    }
  }

  private addKey(k: string, id: string): void {
    const ids = this.byKey.get(k);
    if (ids === undefined) this.byKey.set(k, id);
    else if (typeof ids !== 'string') ids.add(id);
    else if (ids !== id) this.byKey.set(k, new Set([ids, id]));
  }

  private removeKey(k: string, id: string): void {
    const ids = this.byKey.get(k);
    if (ids === id) this.byKey.delete(k);
    else if (typeof ids !== 'string' && ids !== undefined) {
      ids.delete(id);
      if (ids.size === 0) this.byKey.delete(k);
    }
  }
}

/** The recording's start time within the inclusive bounds (epoch ms), when any is given. */
export function inRange(job: JobRecord, fromMs: number | undefined, toMs: number | undefined): boolean {
  if (fromMs === undefined && toMs === undefined) return true;
  const start = Date.parse(job.metadata.startDateTime);
  if (Number.isNaN(start)) return false;
  return (fromMs === undefined || start >= fromMs) && (toMs === undefined || start <= toMs);
}
