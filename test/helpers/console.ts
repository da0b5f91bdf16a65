/**
 * What the console's browser tests share: the console built once (only when ui/ changed since dist/ui was built,
 * one build at a time across test files), and Debian's chromium, headless, through playwright-core.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium, type BrowserContext } from 'playwright-core';

const run = promisify(execFile);
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const chromiumPresent = existsSync(CHROMIUM);
const UI = path.join(ROOT, 'ui');
const BUILT = path.join(ROOT, 'dist/ui/index.html');
const LOCK = path.join(ROOT, 'dist/.ui-build.lock');

async function newestUnder(dir: string): Promise<number> {
  let newest = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    newest = Math.max(newest, (await stat(path.join(entry.parentPath, entry.name))).mtimeMs);
  }
  return newest;
}

async function stale(): Promise<boolean> {
  const built = await stat(BUILT).catch(() => undefined);
  return !built || built.mtimeMs < (await newestUnder(UI));
}

/** `vite build` as `npm run build` runs it, when dist/ui is missing or older than ui/. */
export async function buildConsole(): Promise<void> {
  await mkdir(path.dirname(LOCK), { recursive: true });
  const deadline = Date.now() + 120_000;
  // One build at a time: another test file building meanwhile empties dist/ui under this one's feet.
  for (;;) {
    try {
      await mkdir(LOCK);
      break;
    } catch {
      if (Date.now() > deadline) await rm(LOCK, { recursive: true, force: true }); // a killed run's leftover
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  try {
    if (!(await stale())) return;
    await run(
      process.execPath,
      [path.join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--config', path.join(UI, 'vite.config.ts')],
      { cwd: ROOT },
    );
  } finally {
    await rm(LOCK, { recursive: true, force: true });
  }
}

export function launchChromium(profile: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profile, {
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
}
