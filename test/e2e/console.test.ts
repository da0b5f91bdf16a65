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
import { SAMPLE_METADATA, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { openAsBlob } from 'node:fs';

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
    // RECONCILE=off: a 500 holds the job (with Imagicle's reads it would be asked about and sent again).
    t = await startTestGateway({ GATEWAY_ADMIN_KEYS: KEY, RETRY_MAX_ATTEMPTS: '1', RECONCILE: 'off' });
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1366, height: 900 },
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

  it('asks for the API key with a sign-in prompt, polls nothing meanwhile, then shows the live overview', async () => {
    const polled: string[] = [];
    const count = (r: { url(): string }): void => void (r.url().includes('/metrics') && polled.push(r.url()));
    page.on('request', count);
    await page.goto(`${t.url}/ui/`);
    await page.getByTestId('sign-in').waitFor();
    expect(await page.textContent('main')).not.toMatch(/Uploads|None\./);
    const before = polled.length;
    await page.waitForTimeout(6000);
    expect(polled.length).toBe(before);
    page.off('request', count);
    await page.fill('input[name=apiKey]', KEY);
    await page.click('form.key button[type=submit]');
    await expect.poll(() => page.getByRole('alert').count()).toBe(0);
    await expect.poll(() => page.getByTestId('tiles').textContent()).toContain('Uploads');
    await expect
      .poll(() => page.getByTestId('health').textContent(), { timeout: 15_000 })
      .toMatch(/Imagicle reachable.*ffmpeg ready/);
    expect(await page.getByTestId('rates').locator('svg').count()).toBe(3);
    expect(await page.getByTestId('watch').textContent()).toMatch(/watched folder|taken/);
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
    // The recording's metadata, a time axis on the waveforms, and the delivered output's audio said to be gone.
    const recording = await page.getByTestId('recording').textContent();
    expect(recording).toMatch(/Direction\s*incoming/);
    expect(recording).toMatch(/Local party/);
    expect(await page.getByTestId('axis-0').locator('span').count()).toBeGreaterThan(1);
    await expect
      .poll(() => page.getByTestId('player-output-gone').textContent())
      .toMatch(/delivered to Imagicle and its audio deleted/);
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
    // Held: the console says Imagicle may already have it; the player plays the output the job still holds.
    expect(await page.getByTestId('held-note').textContent()).toMatch(/Imagicle may already hold this recording/);
    const audio = page.getByTestId('player-output');
    await audio.waitFor();
    await expect
      .poll(() => audio.evaluate((el) => (el as unknown as { readyState: number }).readyState))
      .toBeGreaterThanOrEqual(1);
    await audio.evaluate((el) => void ((el as unknown as { currentTime: number }).currentTime = 0.5));
    await audio.evaluate((el) => el.dispatchEvent(new Event('timeupdate')));
    await expect
      .poll(() =>
        page.getByTestId('playhead-0').evaluate((el) => (el as unknown as { style: { left: string } }).style.left),
      )
      .not.toBe('0%');
    const dialogs: string[] = [];
    page.once('dialog', (d) => void (dialogs.push(d.message()), d.accept()));
    await page.getByRole('button', { name: 'Retry' }).click();
    await expect.poll(() => dialogs[0]).toMatch(/Imagicle may already hold this recording/);
    await expect.poll(() => page.getByTestId('job-state').textContent(), { timeout: 10_000 }).toBe('delivered');
    const attempts = page.getByTestId('attempts').locator('tbody tr');
    expect(await attempts.count()).toBe(2);
    expect(await attempts.nth(0).textContent()).toContain('500');
    expect(await attempts.nth(1).textContent()).toMatch(/success.*20[01]/);
    await page.screenshot({ path: path.join(shots, 'console-retried.png'), fullPage: true });
  });

  it('lists jobs by state chip with counts, filters in the URL, finds by search, opens a row with Enter', async () => {
    await page.goto(`${t.url}/ui/#/jobs`);
    const chip = page.locator('[data-state=delivered]');
    await expect.poll(() => chip.textContent()).toBe('delivered2');
    await chip.click();
    await expect.poll(() => page.url()).toContain('#/jobs?state=delivered');
    await expect.poll(() => page.getByTestId('jobs').locator('tbody tr').count()).toBe(2);
    const first = t.gateway.delivery!.spool.list()[0]!;
    await page.fill('input[name=q]', first.metadata.pbxCallId!);
    await expect.poll(() => page.getByTestId('jobs').locator('tbody tr').count()).toBe(1);
    expect(page.url()).toContain(`q=${first.metadata.pbxCallId}`);
    expect(await page.getByTestId('jobs').locator('tbody tr').getAttribute('data-job')).toBe(first.id);
    // Back goes to the unsearched list; a search that finds nothing says so.
    await page.goBack();
    await expect.poll(() => page.getByTestId('jobs').locator('tbody tr').count()).toBe(2);
    await page.fill('input[name=q]', 'no-such-call');
    await expect.poll(() => page.getByTestId('jobs-empty').textContent()).toMatch(/Nothing found for “no-such-call”/);
    await page.goto(`${t.url}/ui/#/jobs`);
    const row = page.getByTestId('jobs').locator(`tbody tr[data-job="${first.id}"]`);
    await row.focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.url()).toContain(`#/jobs/${first.id}`);
    await page.goto(`${t.url}/ui/#/`);
    // Two uploads; the held one was delivered by the retry, so nothing is left undelivered.
    await expect
      .poll(() => page.getByTestId('tiles').textContent(), { timeout: 15_000 })
      .toMatch(/^2Uploads.*1Retries.*0Undelivered jobs/);
    expect(await page.textContent('main')).toContain('Recent failuresNone.');
  });

  it('sees new jobs without a reload, and deletes selected ones after a confirmation that counts them', async () => {
    await page.goto(`${t.url}/ui/#/jobs`);
    await expect.poll(() => page.getByTestId('jobs').locator('tbody tr').count()).toBe(2);
    // An upload from elsewhere: the open list shows it within its 5 s refresh.
    const form = new FormData();
    form.append('jsondata', JSON.stringify({ ...SAMPLE_METADATA, pbxCallId: 'from-elsewhere' }));
    form.append('attachment', await openAsBlob(fixture('pcm16-mono.wav')), 'x.wav');
    const res = await fetch(`${t.url}/v1/recordings`, { method: 'POST', body: form, headers: { 'x-api-key': KEY } });
    expect(res.status).toBe(201);
    await expect.poll(() => page.getByTestId('jobs').locator('tbody tr').count(), { timeout: 10_000 }).toBe(3);
    const rows = page.getByTestId('jobs').locator('tbody tr');
    await rows.nth(0).locator('input[type=checkbox]').check();
    await rows.nth(1).locator('input[type=checkbox]').check();
    const dialogs: string[] = [];
    page.once('dialog', (d) => void (dialogs.push(d.message()), d.accept()));
    await page.getByRole('button', { name: 'Delete selected (2)' }).click();
    await expect.poll(() => dialogs[0]).toMatch(/^Delete 2 jobs/);
    await expect.poll(() => rows.count()).toBe(1);
  });

  it('tries a file on /v1/transcode, keeps what was typed across endpoints, shows the pbxCallId sent', async () => {
    await page.goto(`${t.url}/ui/#/try`);
    await page.fill('input[name=pbxCallId]', 'typed-by-hand');
    await page.selectOption('select[name=endpoint]', 'transcode');
    await page.setInputFiles('input[name=attachment]', fixture('opus-stereo.opus'));
    await page.click('form.try button[type=submit]');
    await expect.poll(() => page.getByTestId('report-decision').textContent()).toBe('transcode');
    expect(await page.getByRole('alert').count()).toBe(0);
    await page.selectOption('select[name=endpoint]', 'recordings');
    expect(await page.inputValue('input[name=pbxCallId]')).toBe('typed-by-hand');
    await page.click('form.try button[type=submit]');
    await expect.poll(() => page.getByTestId('sent-call-id').textContent()).toContain('typed-by-hand');
  });

  it('never scrolls sideways at 400 px; tables become stacked rows', async () => {
    await page.setViewportSize({ width: 400, height: 800 });
    try {
      const jobId = t.gateway.delivery!.spool.list().at(-1)!.id;
      for (const [route, shot] of [
        ['#/', 'console-overview-narrow.png'],
        ['#/jobs', 'console-jobs-narrow.png'],
        [`#/jobs/${jobId}`, 'console-job-narrow.png'],
        ['#/try', 'console-try-narrow.png'],
      ] as const) {
        await page.goto(`${t.url}/ui/${route}`);
        await page.waitForTimeout(1500);
        const width = await page.evaluate(
          () =>
            (globalThis as unknown as { document: { scrollingElement: { scrollWidth: number } } }).document
              .scrollingElement.scrollWidth,
        );
        expect(width, route).toBeLessThanOrEqual(400);
        await page.screenshot({ path: path.join(shots, shot), fullPage: true });
      }
    } finally {
      await page.setViewportSize({ width: 1366, height: 900 });
    }
    for (const [route, shot] of [
      ['#/', 'console-overview-wide.png'],
      ['#/jobs', 'console-jobs-wide.png'],
    ] as const) {
      await page.goto(`${t.url}/ui/${route}`);
      await page.waitForTimeout(1500);
      await page.screenshot({ path: path.join(shots, shot), fullPage: true });
    }
  });
});
