/**
 * The console at contact-centre volume: 10,000 jobs in the spool (journals written in the spool's on-disk format
 * before the gateway starts), the jobs list's first page measured in headless chromium. The figure is printed;
 * the assertion is generous (no timed assertion flakiness on a shared machine): the target is < 1 s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium, type BrowserContext } from 'playwright-core';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import type { JobRecord } from '../../src/delivery/job.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ADMIN = 'console-scale-admin-0123456789abcdef';
const JOBS = 10_000;
const present = existsSync(CHROMIUM);
if (!present && process.env.CI) throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium`);
if (!present) console.warn(`SKIPPED the console scale test: ${CHROMIUM} not found (or set CHROMIUM_PATH)`);

/** A delivered job as the spool journals it (no audio left), or a held one for every 20th. */
function journal(i: number, now: number): JobRecord {
  const at = new Date(now - (JOBS - i) * 1000).toISOString();
  const held = i % 20 === 0;
  return {
    version: 1,
    id: randomUUID(),
    mode: 'native',
    requestId: `scale-${i}`,
    async: false,
    owner: 'key:000000000000',
    state: held ? 'failed' : 'delivered',
    createdAt: at,
    updatedAt: at,
    expiresAt: new Date(now + 86_400_000).toISOString(),
    metadata: {
      startDateTime: at,
      direction: 1,
      localParty: { username: `agent${i % 300}`, phoneNumber: String(1000 + (i % 300)) },
      remoteParty: { phoneNumber: `+3902${String(i).padStart(8, '0')}` },
      pbxCallId: `call-${i}`,
    },
    stereoOptions: undefined,
    inputs: {
      attachment: { file: 'input-attachment.wav', originalName: `call-${i}.wav`, extension: 'wav', bytes: 16_044 },
    },
    callerAuthorization: undefined,
    dedupKey: undefined,
    audioSha256: undefined,
    contentType: 'audio/wave',
    decision: 'pass-through',
    parts: [],
    attempts: 1,
    nextAttemptAt: undefined,
    lastError: held
      ? {
          at,
          part: 1,
          status: 500,
          code: undefined,
          message: 'Imagicle answered 500',
          body: undefined,
          ambiguous: true,
        }
      : undefined,
    possibleDuplicates: 0,
    deliveredAt: held ? undefined : at,
    failedAt: held ? at : undefined,
    history: [],
  } as JobRecord;
}

let t: TestGateway;
let context: BrowserContext;
let work: string;

describe.skipIf(!present)('the console with 10,000 jobs', () => {
  beforeAll(async () => {
    await run(
      process.execPath,
      [path.join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--config', path.join(ROOT, 'ui/vite.config.ts')],
      { cwd: ROOT },
    );
    work = await mkdtemp(path.join(os.tmpdir(), 'console-scale-'));
    const jobsDir = path.join(work, 'spool', 'jobs');
    const now = Date.now();
    for (let i = 0; i < JOBS; i++) {
      const job = journal(i, now);
      await mkdir(path.join(jobsDir, job.id), { recursive: true });
      await writeFile(path.join(jobsDir, job.id, 'job.json'), JSON.stringify(job));
    }
    t = await startTestGateway({ SPOOL_DIR: path.join(work, 'spool'), GATEWAY_ADMIN_KEYS: ADMIN, DEDUP_WINDOW: '24h' });
    expect(t.gateway.delivery!.spool.list().length).toBe(JOBS);
    context = await chromium.launchPersistentContext(path.join(work, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1366, height: 900 },
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
    });
  }, 300_000);

  afterAll(async () => {
    await context?.close();
    await t?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('renders the first page of the jobs list (a figure for < 1 s)', async () => {
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(`${t.url}/ui/`);
    // (A browser's sessionStorage; this project's Node typings have no DOM.)
    await page.evaluate(
      (key) =>
        (globalThis as unknown as { sessionStorage: { setItem(k: string, v: string): void } }).sessionStorage.setItem(
          'imagicle-gateway-api-key',
          key,
        ),
      ADMIN,
    );
    const figures: number[] = [];
    for (let round = 0; round < 3; round++) {
      const started = Date.now();
      await page.goto(`${t.url}/ui/?round=${round}#/jobs`);
      await page.locator('[data-testid=jobs] tbody tr').first().waitFor({ timeout: 60_000 });
      figures.push(Date.now() - started);
    }
    const rows = await page.locator('[data-testid=jobs] tbody tr').count();
    expect(rows).toBe(50);
    // Newest first: the last journal written is the newest job.
    expect(await page.locator('[data-testid=jobs] tbody tr').first().textContent()).toContain(`call-${JOBS - 1}`);
    expect(await page.locator('[data-state=failed]').textContent()).toBe(`failed${JOBS / 20}`);
    const best = Math.min(...figures);
    console.log(
      `console first page at ${JOBS} jobs: ${figures.join(' ms, ')} ms (best ${best} ms; API answer ${await page.evaluate(() => (globalThis as unknown as { document: { body: { dataset: Record<string, string> } } }).document.body.dataset.jobsLoadedMs)} ms; target < 1000 ms)`,
    );
    // Generous: the figure above is the measurement; this only catches a list that does not page at all.
    expect(best).toBeLessThan(30_000);
  }, 300_000);
});
