import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { FIXTURES_DIR } from './helpers/fixtures.js';

const SCRIPT = fileURLToPath(new URL('./fixtures/make-fixtures.sh', import.meta.url));
const STAMP = join(FIXTURES_DIR, '.complete');

const execFileAsync = promisify(execFile);

/** The stamp make-fixtures.sh writes: its FIXTURES_VERSION and the sha256 of the script itself. */
function stampFor(script: Buffer): string {
  const version = /^FIXTURES_VERSION=(\S+)\s*$/m.exec(script.toString('utf8'))?.[1];
  if (version === undefined) {
    throw new Error(`${SCRIPT} has no FIXTURES_VERSION=... line`);
  }
  return `FIXTURES_VERSION=${version} sha256=${createHash('sha256').update(script).digest('hex')}`;
}

async function readStamp(): Promise<string | undefined> {
  try {
    return (await readFile(STAMP, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

function outputOf(err: unknown): string {
  if (typeof err !== 'object' || err === null) return String(err);
  const parts: string[] = [];
  if ('stderr' in err && typeof err.stderr === 'string' && err.stderr.trim() !== '') parts.push(err.stderr.trim());
  if ('stdout' in err && typeof err.stdout === 'string' && err.stdout.trim() !== '') parts.push(err.stdout.trim());
  if (err instanceof Error) parts.push(err.message);
  return parts.join('\n');
}

/** Generates the test fixtures unless the ones on disk were made by the current script. */
export default async function setup(): Promise<void> {
  const expected = stampFor(await readFile(SCRIPT));
  if ((await readStamp()) === expected) return;

  try {
    // The script takes a lock, so concurrent test runs do not trip over each other.
    await execFileAsync('bash', [SCRIPT, FIXTURES_DIR], { timeout: 120_000, maxBuffer: 4 * 1024 * 1024 });
  } catch (err) {
    throw new Error(`Generating the test fixtures failed (bash ${SCRIPT} ${FIXTURES_DIR}):\n${outputOf(err)}`);
  }

  const written = await readStamp();
  if (written !== expected) {
    throw new Error(
      `make-fixtures.sh finished but ${STAMP} holds ${JSON.stringify(written)}, expected ${JSON.stringify(expected)}`,
    );
  }
}
