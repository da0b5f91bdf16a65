/**
 * The web console in a real browser: playwright-core driving Debian's
 * chromium, headless, against a gateway and its embedded emulator.
 * Enter the API key, upload a file through the form, see the job delivered,
 * open its detail with the waveforms, hold a job with the emulator's fault
 * injection and retry it from the console.
 *
 * Screenshots go to a temp folder; with UPDATE_SCREENSHOTS=1 to docs/ (the
 * README shows one).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { fixture } from '../helpers/fixtures.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const KEY = 'console-test-key-0123456789abcdef';
const present = existsSync(CHROMIUM);
if (!present && process.env.CI) throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium`);
if (!present)
  console.warn(
    `SKIPPED the console browser test: ${CHROMIUM} not found (apt-get install chromium, or set CHROMIUM_PATH)`,
  );

let t: TestGateway;
let context: BrowserContext;
let page: Page;
let profile: string;
let shots: string;

const cspViolations: string[] = [];

describe.skipIf(!present)('the web console in chromium', () => {
  beforeAll(async () => {
    // The console is static files built by vite; the test builds them as `npm run build` does.
    await run(
      process.execPath,
      [path.join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--config', path.join(ROOT, 'ui/vite.config.ts')],
      { cwd: ROOT },
    );
    profile = await mkdtemp(path.join(os.tmpdir(), 'chromium-profile-'));
    shots = process.env.UPDATE_SCREENSHOTS
      ? path.join(ROOT, 'docs')
      : await mkdtemp(path.join(os.tmpdir(), 'console-shots-'));
    // The console is the operator's: an admin key (its overview reads /metrics, which tenant keys may not).
    t = await startTestGateway({ GATEWAY_ADMIN_KEYS: KEY, RETRY_MAX_ATTEMPTS: '1' });
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1200, height: 900 },
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
    page = context.pages()[0] ?? (await context.newPage());
    // The gateway's Content-Security-Policy (helmet, http/app.ts) must let the console do everything it does.
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
    });
  }, 90_000);

  afterAll(async () => {
    await context?.close();
    await t?.close();
    await rm(profile, { recursive: true, force: true });
    if (!process.env.UPDATE_SCREENSHOTS && shots) await rm(shots, { recursive: true, force: true });
  });

  const upload = async (file: string): Promise<string> => {
    await page.goto(`${t.url}/ui/#/try`);
    await page.setInputFiles('input[name=attachment]', file);
    await page.click('form.try button[type=submit]');
    const link = page.getByTestId('report-job');
    await link.waitFor();
    return (await link.textContent())!.trim();
  };

  it('asks for the API key, then shows the live overview', async () => {
    await page.goto(`${t.url}/ui/`);
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('401');
    await page.fill('input[name=apiKey]', KEY);
    await page.click('form.key button[type=submit]');
    await expect.poll(() => page.getByRole('alert').count()).toBe(0);
    await expect.poll(() => page.getByTestId('tiles').textContent()).toContain('Uploads');
  });

  it('uploads a file through the form, shows the job delivered with its waveforms', async () => {
    const jobId = await upload(fixture('opus-stereo.opus'));
    expect(await page.getByTestId('report-decision').textContent()).toBe('transcode');
    await page.click('[data-testid=report-job]');
    await expect.poll(() => page.getByTestId('job-state').textContent()).toBe('delivered');
    expect(page.url()).toContain(jobId);
    for (const channel of [0, 1]) {
      const img = page.getByTestId(`waveform-${channel}`);
      await img.waitFor();
      // A real picture was decoded, at the size it was drawn.
      // (The element is an HTMLImageElement; this project's Node typings have no DOM.)
      expect(
        await img.evaluate((el) => (el as unknown as { complete: boolean; naturalWidth: number }).naturalWidth),
      ).toBe(800);
    }
    const parts = await page.getByTestId('parts').textContent();
    expect(parts).toContain('delivered');
    const recorded = t.emulator.store.list();
    expect(parts).toContain(String(recorded.at(-1)!.id));
    expect(await page.getByTestId('attempts').locator('tbody tr').count()).toBe(1);
    expect(await page.textContent('[data-testid=job-detail]')).toContain('Stereo analysis');
    await page.screenshot({ path: path.join(shots, 'console-job.png'), fullPage: true });
    expect(cspViolations).toEqual([]);
  });

  it('holds a job with a fault from the emulator, and retries it from the console', async () => {
    t.emulator.faults.add({ status: 500, body: { reason: 0, message: 'Imagicle had a bad moment' } });
    const held = await upload(fixture('pcm16-mono.wav'));
    // The overview lists it among the recent failures, with Imagicle's 500 among the answers.
    await page.goto(`${t.url}/ui/#/`);
    const failure = page.getByTestId('recent-failures').locator(`a[href="#/jobs/${held}"]`);
    await failure.waitFor();
    await page.screenshot({ path: path.join(shots, 'console-overview.png'), fullPage: true });
    await failure.click();
    await expect.poll(() => page.getByTestId('job-state').textContent()).toBe('failed');
    expect(await page.getByTestId('attempts').textContent()).toContain('Imagicle had a bad moment');
    await page.getByRole('button', { name: 'Retry' }).click();
    await expect.poll(() => page.getByTestId('job-state').textContent(), { timeout: 10_000 }).toBe('delivered');
    const attempts = page.getByTestId('attempts').locator('tbody tr');
    expect(await attempts.count()).toBe(2);
    expect(await attempts.nth(0).textContent()).toContain('500');
    expect(await attempts.nth(1).textContent()).toMatch(/success.*20[01]/);
    await page.screenshot({ path: path.join(shots, 'console-retried.png'), fullPage: true });
  });

  it('lists jobs by state and finds one by pbxCallId', async () => {
    await page.goto(`${t.url}/ui/#/jobs`);
    await page.selectOption('select[name=state]', 'delivered');
    await expect.poll(() => page.getByTestId('jobs').locator('tbody tr').count()).toBe(2);
    const first = t.gateway.delivery!.spool.list()[0]!;
    await page.fill('input[name=pbxCallId]', first.metadata.pbxCallId!);
    await expect.poll(() => page.getByTestId('jobs').locator('tbody tr').count()).toBe(1);
    expect(await page.getByTestId('jobs').locator('tbody tr').getAttribute('data-job')).toBe(first.id);
    await page.goto(`${t.url}/ui/#/`);
    // Two uploads; the held one was delivered by the retry, so nothing is left undelivered.
    await expect.poll(() => page.getByTestId('tiles').textContent()).toMatch(/^2Uploads.*1Retries.*0Undelivered jobs/);
    expect(await page.textContent('main')).toContain('Recent failuresNone.');
  });
});
