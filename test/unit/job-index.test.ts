import { describe, expect, it } from 'vitest';
import { DueQueue } from '../../src/delivery/due-queue.js';
import { JobIndex } from '../../src/delivery/job-index.js';
import { newJobRecord } from '../../src/delivery/job-life.js';
import type { JobRecord, JobState } from '../../src/delivery/job.js';
import { SAMPLE_METADATA } from '../helpers/gateway.js';
import type { RecordingMetadata } from '../../src/imagicle/schema.js';

function job(n: number, owner: string, state: JobState = 'received', extra: Partial<JobRecord> = {}): JobRecord {
  const record = newJobRecord(
    {
      mode: 'native',
      requestId: `r${n}`,
      owner,
      async: true,
      expiresAt: new Date(Date.now() + 60_000).toISOString(),
      metadata: {
        ...(SAMPLE_METADATA as RecordingMetadata),
        pbxCallId: `call-${n}`,
        startDateTime: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
      },
      stereoOptions: undefined,
      callerAuthorization: undefined,
      dedupKey: undefined,
      audioSha256: undefined,
      contentType: undefined,
      decision: undefined,
    },
    { attachment: { file: 'input', originalName: undefined, extension: 'wav', bytes: 1 } },
    new Date(Date.UTC(2026, 0, 1, 0, 0, n)),
    `00000000-0000-0000-0000-${String(n).padStart(12, '0')}`,
  );
  return { ...record, state, ...extra };
}

describe('JobIndex', () => {
  it('pages newest first with a cursor, per owner, with counts that ignore other owners', () => {
    const index = new JobIndex();
    const jobs = new Map<string, JobRecord>();
    for (let n = 1; n <= 120; n++) {
      const j = job(n, n % 3 === 0 ? 'key:b' : 'key:a', n % 10 === 0 ? 'failed' : 'received');
      jobs.set(j.id, j);
      index.upsert(j);
    }
    const get = (id: string) => jobs.get(id);
    const first = index.page({ owner: 'key:a', limit: 25 }, get);
    expect(first.jobs).toHaveLength(25);
    expect(first.jobs[0]!.metadata.pbxCallId).toBe('call-119');
    expect(first.jobs.every((j) => j.owner === 'key:a')).toBe(true);
    expect(first.counts.received + first.counts.failed).toBe(80);
    const seen = new Set(first.jobs.map((j) => j.id));
    let cursor = first.nextCursor;
    while (cursor) {
      const page = index.page({ owner: 'key:a', limit: 25, cursor }, get);
      for (const j of page.jobs) {
        expect(seen.has(j.id)).toBe(false);
        seen.add(j.id);
      }
      cursor = page.nextCursor;
    }
    expect(seen.size).toBe(80);
    // Another owner's jobs never change this owner's answer.
    for (let n = 121; n <= 1200; n++) {
      const j = job(n, 'key:b');
      jobs.set(j.id, j);
      index.upsert(j);
    }
    expect(index.page({ owner: 'key:a', limit: 5 }, get).jobs[0]!.metadata.pbxCallId).toBe('call-119');
    expect(index.countsOf('key:a')).toEqual(first.counts);
    expect(index.countsOf(undefined).received).toBe(1200 - 12);
  });

  it('follows state changes, searches by exact words, filters by door and start time, forgets removed jobs', () => {
    const index = new JobIndex();
    const jobs = new Map<string, JobRecord>();
    for (let n = 1; n <= 10; n++) {
      const j = job(n, 'key:a', 'received', n > 7 ? { door: 'watch' } : {});
      jobs.set(j.id, j);
      index.upsert(j);
    }
    const get = (id: string) => jobs.get(id);
    const third = jobs.get(job(3, 'x').id)!;
    third.state = 'delivered';
    third.parts = [
      {
        ...{ index: 1, count: 1, file: 'p', bytes: 1, samples: 1, sampleRate: 8000, durationSeconds: 1 },
        ...{ isoDuration: 'PT1S', startOffsetSeconds: 0, filename: 'a.wav', metadata: {}, attempts: 1 },
        state: 'delivered',
        upstream: { status: 201, contentType: 'application/json', body: '{"id":"IMG-9"}', json: { id: 'IMG-9' } },
        deliveredAt: new Date().toISOString(),
      },
    ];
    index.upsert(third);
    expect(index.countsOf('key:a')).toMatchObject({ received: 9, delivered: 1 });
    expect(index.page({ owner: 'key:a', q: 'IMG-9', limit: 5 }, get).jobs.map((j) => j.id)).toEqual([third.id]);
    expect(index.page({ owner: 'key:b', q: 'IMG-9', limit: 5 }, get).jobs).toEqual([]);
    expect(index.page({ owner: 'key:a', q: 'call-4', limit: 5 }, get).jobs).toHaveLength(1);
    const watch = index.page({ owner: 'key:a', door: 'watch', limit: 50 }, get);
    expect(watch.jobs.map((j) => j.metadata.pbxCallId)).toEqual(['call-10', 'call-9', 'call-8']);
    expect(watch.counts.received).toBe(3);
    const range = index.page(
      { owner: 'key:a', fromMs: Date.UTC(2026, 0, 1, 0, 0, 2), toMs: Date.UTC(2026, 0, 1, 0, 0, 4), limit: 50 },
      get,
    );
    expect(range.jobs.map((j) => j.metadata.pbxCallId)).toEqual(['call-4', 'call-3', 'call-2']);
    index.remove(third.id);
    jobs.delete(third.id);
    expect(index.countsOf('key:a').delivered).toBe(0);
    expect(index.page({ owner: 'key:a', q: 'IMG-9', limit: 5 }, get).jobs).toEqual([]);
  });
});

describe('DueQueue', () => {
  it('hands out due jobs oldest first, waits for the rest, and takes the latest schedule of each', () => {
    const due = new DueQueue();
    due.set('c', 0, 3);
    due.set('a', 0, 1);
    due.set('b', 5_000, 2);
    due.set('d', 100, 4);
    expect(due.take(50)).toBe('a');
    expect(due.take(50)).toBe('c');
    expect(due.take(50)).toBeUndefined();
    expect(due.nextDue()).toBe(100);
    due.set('b', 0, 2);
    expect(due.take(200)).toBe('b');
    expect(due.take(200, (id) => id !== 'd')).toBeUndefined();
    expect(due.take(200)).toBe('d');
    expect(due.size).toBe(0);
  });

  it('a backlog of 20,000 leaves in acceptance order, whatever order it came due in', () => {
    const due = new DueQueue();
    for (let i = 0; i < 20_000; i++) due.set(`j${i}`, (i * 7919) % 1000, i);
    const taken: number[] = [];
    for (let id = due.take(1000); id !== undefined; id = due.take(1000)) taken.push(Number(id.slice(1)));
    expect(taken).toEqual(Array.from({ length: 20_000 }, (_, i) => i));
  });
});
