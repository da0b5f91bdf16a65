/** Disk reservations: the check and the booking are one step, so concurrent jobs cannot overbook. */
import { describe, expect, it } from 'vitest';
import os from 'node:os';
import { DiskLedger } from '../../src/pipeline/disk.js';
import { boundOutput } from '../../src/pipeline/bounds.js';
import { GatewayError } from '../../src/errors.js';

const MB = 1_000_000;

describe('DiskLedger', () => {
  it('lets exactly as many concurrent reservations through as fit, and frees them on release', async () => {
    const hundred = (): number => 100 * MB;
    const options = { label: 'the spool', minFreeBytes: 0, room: hundred, ceiling: hundred };
    const ledger = new DiskLedger(os.tmpdir(), options);
    const attempts = await Promise.allSettled(Array.from({ length: 10 }, () => ledger.reserve(30 * MB, 'a job')));
    const granted = attempts.filter((a): a is PromiseFulfilledResult<() => void> => a.status === 'fulfilled');
    expect(granted).toHaveLength(3);
    expect(ledger.reserved()).toBe(90 * MB);
    for (const refused of attempts.filter((a) => a.status === 'rejected')) {
      const error = (refused as PromiseRejectedResult).reason as GatewayError;
      expect(error.status).toBe(507);
      expect(error.headers['Retry-After']).toBe('60');
      expect(error.message).toMatch(/not enough disk space.*a job needs 30 MB, 10 MB free in the spool/);
    }
    granted[0]!.value();
    granted[0]!.value();
    expect(ledger.reserved()).toBe(60 * MB);
    await expect(ledger.reserve(40 * MB, 'a job')).resolves.toBeTypeOf('function');
  });

  it('refuses for good (413) what could never fit', async () => {
    const ledger = new DiskLedger(os.tmpdir(), { label: 'the spool', minFreeBytes: 0, ceiling: () => 50 * MB });
    await expect(ledger.reserve(60 * MB, 'the converted audio')).rejects.toMatchObject({ status: 413, reason: 2 });
  });

  it('keeps MIN_FREE_DISK_BYTES free on the file system', async () => {
    const huge = Number.MAX_SAFE_INTEGER / 2;
    const ledger = new DiskLedger(os.tmpdir(), { label: 'the work folder', minFreeBytes: huge });
    await expect(ledger.reserve(1, 'x')).rejects.toMatchObject({ status: 413 });
  });

  it('a scope releases everything it reserved', async () => {
    const ledger = new DiskLedger(os.tmpdir(), { label: 'the spool', minFreeBytes: 0, room: () => 100 * MB });
    const scope = ledger.scope();
    await scope.reserve(10 * MB, 'a');
    await scope.reserve(20 * MB, 'b');
    expect(ledger.reserved()).toBe(30 * MB);
    scope.releaseAll();
    expect(ledger.reserved()).toBe(0);
  });
});

describe('boundOutput', () => {
  it('refuses an expansion above MAX_EXPANSION (413 reason 2) before reserving anything', async () => {
    const ledger = new DiskLedger(os.tmpdir(), { label: 'the spool', minFreeBytes: 0, room: () => 10_000 * MB });
    const scope = ledger.scope();
    const oneHertz = { inputBytes: 172_044, outputBytes: 688 * MB, what: 'the converted audio' };
    const refused = await boundOutput({ maxExpansion: 2000, budget: scope }, oneHertz).catch((e: unknown) => e);
    expect(refused).toMatchObject({ status: 413, reason: 2 });
    expect((refused as Error).message).toMatch(/^The converted audio would be about 688 MB/);
    expect(ledger.reserved()).toBe(0);
    const long = { inputBytes: 1 * MB, outputBytes: 300 * MB, scratchBytes: 5 * MB, what: 'x' };
    await boundOutput({ maxExpansion: 2000, budget: scope, maxPartBytes: 256 * MB }, long);
    // Over the part limit: the parts and the whole exist together while splitting.
    expect(ledger.reserved()).toBe(605 * MB);
  });
});
