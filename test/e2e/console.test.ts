/**
 * The web console in a real browser: playwright-core driving Debian's
 * chromium, headless, against one gateway and its embedded emulator.
 * Enter the API key, see upstream health, free space and the gateway's
 * hourly rates; upload a file through the form, see the job delivered,
 * open its detail with the waveforms and its webhooks, re-send a failed
 * webhook; hold a job with the emulator's fault injection and retry it from
 * the console; the jobs list's filters; the watched folder's state.
 *
 * Screenshots go to a temp folder; with UPDATE_SCREENSHOTS=1 to docs/ (the
 * README shows one).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { buildConsole, CHROMIUM, chromiumPresent as present, launchChromium, ROOT } from '../helpers/console.js';
import { fixture } from '../helpers/fixtures.js';
import { SAMPLE_METADATA, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { newSecret, WebhookReceiver } from '../helpers/webhook-receiver.js';
import { createLogger } from '../../src/logger.js';
import { openAsBlob } from 'node:fs';

const KEY = 'console-test-key-0123456789abcdef';
if (!present && process.env.CI) throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium`);
if (!present)
  console.warn(
    `SKIPPED the console browser test: ${CHROMIUM} not found (apt-get install chromium, or set CHROMIUM_PATH)`,
  );

let t: TestGateway;
let context: BrowserContext;
let page: Page;
let work: string;
let shots: string;
let watched: string;
let receiver: WebhookReceiver;
let stopWatcher: (() => Promise<void>) | undefined;

const cspViolations: string[] = [];

describe.skipIf(!present)('the web console in chromium', () => {
  beforeAll(async () => {
    // The console is static files built by vite; built here as `npm run build` does, when ui/ changed.
    await buildConsole();
    work = await mkdtemp(path.join(os.tmpdir(), 'console-test-'));
    watched = path.join(work, 'drop');
    await mkdir(watched);
    shots = process.env.UPDATE_SCREENSHOTS ? path.join(ROOT, 'docs') : path.join(work, 'shots');
    await mkdir(shots, { recursive: true });
    // A webhook receiver that refuses (500): every job's webhook is tried for WEBHOOK_MAX_AGE, then failed.
    const secret = newSecret();
    receiver = new WebhookReceiver([secret]);
    receiver.answer = () => 500;
    await receiver.start();
    // The console is the operator's: an admin key (its overview reads /metrics, which tenant keys may not).
    // RECONCILE=off: a 500 holds the job (with Imagicle's reads it would be asked about and sent again).
    t = await startTestGateway({
      GATEWAY_ADMIN_KEYS: KEY,
      RETRY_MAX_ATTEMPTS: '1',
      RECONCILE: 'off',
      WEBHOOKS: JSON.stringify({ '*': [{ url: receiver.url, secret, allowPrivate: true }] }),
      WEBHOOK_MAX_AGE: '2s',
      WEBHOOK_RETRY_MIN_DELAY_MS: '200',
      WEBHOOK_RETRY_MAX_DELAY_MS: '500',
      WEBHOOK_TIMEOUT_MS: '1000',
      // The watched folder (started by the overview's test, as `serve` starts it).
      WATCH_DIR: watched,
      WATCH_PATTERN: '{start:yyyyMMdd-HHmmss}_{direction:in=1,out=2}_{local}_{remote}_{callId}',
      WATCH_DEFAULTS: '{"localParty":{"username":"pbx"}}',
      WATCH_STABLE_SECONDS: '1',
      WATCH_POLL_SECONDS: '1',
      WATCH_STATE_DIR: path.join(work, 'watch-state'),
    });
    context = await launchChromium(path.join(work, 'profile'));
    page = context.pages()[0] ?? (await context.newPage());
    // The gateway's Content-Security-Policy (helmet, http/app.ts) must let the console do everything it does.
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
    });
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    await stopWatcher?.();
    await t?.close();
    await receiver?.stop();
    if (work) await rm(work, { recursive: true, force: true });
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
    // Upstream health from /readyz: reconciliation (RECONCILE=off here: not asked), the folders' free space.
    expect(await page.getByTestId('reconciliation').textContent()).toBe('not available (RECONCILE=off)');
    expect(await page.getByTestId('free-spool').textContent()).toMatch(/spool free [\d.]+ [kMG]B \(\d+%\)/);
    expect(await page.getByTestId('free-tmp').textContent()).toMatch(/tmp free/);
    // Rates from the gateway's own hour (GET /metrics/rates): twelve 5-minute bars each, nothing counted yet.
    expect(await page.getByTestId('rates').locator('svg').count()).toBe(3);
    expect(await page.getByTestId('chart-uploads').locator('rect').count()).toBe(12);
    expect(await page.getByTestId('chart-uploads').textContent()).toContain('uploads: 0 in the last hour');
    // WATCH_DIR is configured but its watcher is not running yet: nothing to show but the door's counters.
    expect(await page.getByTestId('watch').textContent()).toMatch(/No folder is watched/);
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

  it("lists the job's webhooks, and re-sends a failed one with feedback", async () => {
    const job = t.gateway.delivery!.spool.list()[0]!;
    type View = { webhooks: { id: string; state: string; attempts: number; lastStatus?: number }[] };
    const view = async (): Promise<View> =>
      (await (await fetch(`${t.url}/v1/jobs/${job.id}`, { headers: { 'x-api-key': KEY } })).json()) as View;
    // The receiver answers 500: after WEBHOOK_MAX_AGE (2 s) the webhook is failed.
    await expect.poll(async () => (await view()).webhooks[0]?.state, { timeout: 15_000 }).toBe('failed');
    const failed = (await view()).webhooks[0]!;
    expect(failed.lastStatus).toBe(500);
    await page.goto(`${t.url}/ui/#/jobs/${job.id}`);
    const row = page.getByTestId('webhooks').locator(`tr[data-webhook="${failed.id}"]`);
    // (The page may still show the webhook pending from the last test: it follows it until it is settled.)
    await expect.poll(() => row.locator('.state').textContent()).toBe('failed');
    const text = await row.textContent();
    // The endpoint's host only (no path), the event, the state, the attempts, the last status.
    expect(text).toContain(new URL(receiver.url).host);
    expect(text).not.toContain('/hooks');
    expect(text).toMatch(/recording\.delivered.*failed/);
    expect(await row.getByTestId('webhook-attempts').textContent()).toBe(String(failed.attempts));
    expect(text).toContain('500');
    // The receiver is fixed; the operator re-sends from the console and sees the new attempt acknowledged.
    receiver.answer = () => 204;
    const before = receiver.received.length;
    await row.getByRole('button', { name: 'Re-send' }).click();
    await expect.poll(() => row.getByTestId('webhook-note').textContent()).toMatch(/Sent again/);
    await expect.poll(() => row.locator('.state').textContent(), { timeout: 15_000 }).toBe('sent');
    expect(await row.getByTestId('webhook-attempts').textContent()).toBe(String(failed.attempts + 1));
    expect(await row.getByRole('button', { name: 'Re-send' }).count()).toBe(0);
    // The same webhook-id as every earlier attempt, signed: what the receiver's library verified.
    const resent = receiver.received.slice(before);
    expect(resent.length).toBe(1);
    expect(resent[0]!.verified).toBeDefined();
    expect(resent[0]!.id).toBe(receiver.received[0]!.id);
    await page.screenshot({ path: path.join(shots, 'console-job-webhooks.png'), fullPage: true });
    receiver.answer = () => 500;
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
    // The gateway's hour: two uploads, two deliveries (the retried one included), one failure (the held one).
    await expect.poll(() => page.getByTestId('chart-uploads').textContent()).toContain('uploads: 2 in the last hour');
    expect(await page.getByTestId('chart-deliveries').textContent()).toContain('deliveries: 2 in the last hour');
    expect(await page.getByTestId('chart-failures').textContent()).toContain('failures: 1 in the last hour');
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

  it("shows the watched folder's state: taken, delivered, none failed or waiting", async () => {
    const { startServeWatcher } = await import('../../src/import/serve-watch.js');
    const watcher = startServeWatcher(t.config, t.gateway, createLogger('warn'));
    stopWatcher = () => watcher.close();
    await page.goto(`${t.url}/ui/#/`);
    const tile = (label: string) => page.getByTestId('watch').locator(`[data-watch="${label}"] .value`);
    await expect.poll(() => tile('taken').textContent(), { timeout: 10_000 }).toBe('0');
    await copyFile(fixture('pcm16-mono.wav'), path.join(watched, '20261129-101500_in_376_390212345678_watched-1.wav'));
    // Delivered through the store, moved to done/: the overview (polling every 5 s) counts it.
    await expect.poll(() => tile('delivered').textContent(), { timeout: 30_000 }).toBe('1');
    expect(await tile('taken').textContent()).toBe('1');
    expect(await tile('failed').textContent()).toBe('0');
    expect(await tile('waiting').textContent()).toBe('0');
  });

  it('never scrolls sideways at 400 px; tables become stacked rows', async () => {
    const jobId = t.gateway.delivery!.spool.list().at(-1)!.id;
    // What each page shows once its data is in (rather than a fixed wait).
    const loaded = async (route: string): Promise<void> => {
      if (route === '#/') await expect.poll(() => page.getByTestId('health').textContent()).toMatch(/spool free/);
      else if (route === '#/jobs') await page.getByTestId('jobs').locator('tbody tr').first().waitFor();
      else if (route === '#/try') await page.locator('form.try').waitFor();
      else {
        await page.getByTestId('webhooks').waitFor();
        await page.getByTestId('waveform-0').waitFor();
      }
    };
    await page.setViewportSize({ width: 400, height: 800 });
    try {
      for (const [route, shot] of [
        ['#/', 'console-overview-narrow.png'],
        ['#/jobs', 'console-jobs-narrow.png'],
        [`#/jobs/${jobId}`, 'console-job-narrow.png'],
        ['#/try', 'console-try-narrow.png'],
      ] as const) {
        await page.goto(`${t.url}/ui/${route}`);
        await loaded(route);
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
      [`#/jobs/${jobId}`, 'console-job-wide.png'],
    ] as const) {
      await page.goto(`${t.url}/ui/${route}`);
      await loaded(route);
      await page.screenshot({ path: path.join(shots, shot), fullPage: true });
    }
  });
});
