/** What an import prints and writes: progress counters and ETA, the CSV report, watch's readable lines. */
import { describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import type { FileReport } from '../../src/import/file-report.js';
import { count, formatEta, newCounters, progressLine, rates } from '../../src/import/progress.js';
import { csvField, ReportWriter } from '../../src/import/report.js';
import { readableLine } from '../../src/import/readable-log.js';
import { summaryText } from '../../src/import/summary.js';
import { exitCodeFor, WAITING_EXIT } from '../../src/import/run.js';

const report = (status: FileReport['status'], extra: Partial<FileReport> = {}): FileReport => ({
  path: 'a.wav',
  status,
  ids: [],
  parts: undefined,
  duration: undefined,
  durationSeconds: 0,
  decision: undefined,
  error: undefined,
  permanent: false,
  possibleDuplicates: 0,
  ...extra,
});

describe('progress', () => {
  it('counts skipped, invalid and failed apart, and rates only the files worked on', () => {
    const c = newCounters(1000, 0);
    for (let i = 0; i < 500; i++) count(c, report('already-delivered'));
    count(c, report('invalid'));
    count(c, report('failed'));
    for (let i = 0; i < 8; i++) count(c, report('delivered', { durationSeconds: 60 }));
    expect(c).toMatchObject({ done: 510, skipped: 500, invalid: 1, failed: 1, delivered: 8, audioSeconds: 480 });
    // 10 s in: 9 files worked on (8 delivered, 1 failed), not 510.
    const r = rates(c, 10_000);
    expect(r.filesPerSecond).toBeCloseTo(0.9, 5);
    expect(r.etaSeconds).toBeCloseTo(490 / 0.9, 3);
    expect(progressLine(c, 10_000)).toMatch(/8 converted, 500 skipped, 1 invalid, 1 failed/);
    expect(progressLine(c, 10_000)).toMatch(/ETA 9 min 04 s$/);
  });

  it('shows the files waiting for Imagicle with the last upstream error; a summary says they were kept pending', () => {
    const c = newCounters(4, 0);
    count(c, report('delivered', { durationSeconds: 1 }));
    c.waiting = 2;
    c.lastUpstreamError = 'part 1/1: Imagicle answered 503';
    expect(progressLine(c, 1000)).toMatch(
      /0 failed; 2 waiting for Imagicle \(last: part 1\/1: Imagicle answered 503\)/,
    );
    c.waiting = 0;
    count(c, report('waiting', { error: 'part 1/1: connect ECONNREFUSED' }));
    count(c, report('waiting', { error: 'part 1/1: connect ECONNREFUSED' }));
    // Not worked on: the rate counts the delivered file only.
    expect(c).toMatchObject({ done: 3, waited: 2, failed: 0, skipped: 0 });
    expect(rates(c, 1000).filesPerSecond).toBeCloseTo(1, 5);
    const summary = summaryText(
      {
        counters: c,
        reports: [report('delivered'), report('waiting'), report('waiting')],
        elapsedMs: 1000,
        interrupted: false,
      },
      false,
    );
    expect(summary).toMatch(/failed: +0\n/);
    expect(summary).toMatch(/waiting for Imagicle: 2 \(kept pending, not failed/);
    expect(summary).toMatch(/last upstream error: part 1\/1: Imagicle answered 503/);
  });

  it('exits 75 when files were left waiting and nothing failed, 1 when anything failed', () => {
    const c = newCounters(2, 0);
    const run = (...statuses: FileReport['status'][]) => ({
      counters: c,
      reports: statuses.map((s) => report(s)),
      elapsedMs: 0,
      interrupted: false,
    });
    expect(exitCodeFor(run('delivered', 'already-delivered'))).toBe(0);
    expect(exitCodeFor(run('delivered', 'waiting'))).toBe(WAITING_EXIT);
    expect(WAITING_EXIT).toBe(75);
    expect(exitCodeFor(run('failed', 'waiting'))).toBe(1);
  });

  it('gives the ETA with units', () => {
    expect(formatEta(undefined)).toBe('unknown');
    expect(formatEta(42.4)).toBe('42 s');
    expect(formatEta(725)).toBe('12 min 05 s');
    expect(formatEta(3 * 3600 + 7 * 60)).toBe('3 h 07 min');
  });
});

describe('report CSV', () => {
  it('never starts a cell with = + - @ (CSV injection), and quotes as RFC 4180 says', () => {
    expect(csvField('=HYPERLINK("http://x")')).toBe(`"'=HYPERLINK(""http://x"")"`);
    expect(csvField('+1 555 0100')).toBe("'+1 555 0100");
    expect(csvField('-2')).toBe("'-2");
    expect(csvField('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvField('plain, with a comma')).toBe('"plain, with a comma"');
    expect(csvField('ok')).toBe('ok');
  });

  it('writes the lines in input order whatever order the outcomes come in', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'report-'));
    try {
      const file = path.join(dir, 'r.csv');
      const w = new ReportWriter(file);
      const metadata = {
        pbxCallId: '=cmd',
        startDateTime: '2024-05-02T08:15:02.000Z',
        direction: 1 as const,
        localParty: { username: 'archive', phoneNumber: '+39 202' },
        remoteParty: { phoneNumber: '5551232' },
      };
      w.add(2, report('delivered', { path: 'c.wav', ids: ['id-c'], parts: 1 }), metadata);
      w.add(0, report('invalid', { path: 'a.wav', error: '-bad name' }));
      w.add(1, report('failed', { path: 'b.wav', error: 'refused' }));
      w.add(4, report('delivered', { path: 'e.wav' }));
      await w.close();
      const rows = parse(await readFile(file, 'utf8'), { columns: true }) as Record<string, string>[];
      expect(rows.map((r) => r.path)).toEqual(['a.wav', 'b.wav', 'c.wav', 'e.wav']);
      expect(rows[0]!.error).toBe("'-bad name");
      expect(rows[2]).toMatchObject({
        pbxCallId: "'=cmd",
        startDateTime: '2024-05-02T08:15:02.000Z',
        direction: '1',
        localUsername: 'archive',
        localPhoneNumber: "'+39 202",
        remotePhoneNumber: '5551232',
        imagicleIds: 'id-c',
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('summary', () => {
  it('says how much audio a dry run would deliver, and how to resume an interrupted run', () => {
    const c = newCounters(35, 0);
    const reports = [report('would-send', { durationSeconds: 5400, parts: 2 })];
    for (const r of reports) count(c, r);
    expect(summaryText({ counters: c, reports, elapsedMs: 1000, interrupted: false }, true)).toMatch(
      /would send: +1 \(1\.50 h of audio, about 2 recordings in Imagicle\)/,
    );
    expect(summaryText({ counters: c, reports, elapsedMs: 29_900, interrupted: true }, false)).toMatch(
      /^Import interrupted after 29\.9 s: 1 of 35 files; run the same command to resume/,
    );
  });
});

describe("watch's readable lines", () => {
  it('turns the JSON log lines into the lines import prints', () => {
    const line = (o: Record<string, unknown>): string =>
      readableLine(JSON.stringify({ level: 30, time: '2026-12-06T10:11:12.000Z', service: 'x', ...o }));
    expect(
      line({
        msg: 'watch: delivered',
        file: 'a.wav',
        status: 'delivered',
        parts: 1,
        ids: ['X1'],
        movedTo: 'done/a.wav',
      }),
    ).toBe('10:11:12 delivered: a.wav (1 part(s), Imagicle X1) → done/a.wav\n');
    expect(
      line({
        level: 40,
        msg: 'watch: failed for good',
        file: 'b.wav',
        status: 'invalid',
        error: 'no start',
        movedTo: 'failed/b.wav',
      }),
    ).toBe('10:11:12 invalid: b.wav: no start → failed/b.wav\n');
    expect(line({ msg: 'watching', dir: '/in' })).toBe('10:11:12 watching (dir=/in)\n');
  });
});
