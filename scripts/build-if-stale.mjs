/**
 * `npm start`'s prestart: builds only when dist/ is missing or older than what it is built from (src/, ui/, the
 * package and build configuration); otherwise starts at once. Plain JavaScript so that it runs before any build.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const SOURCES = ['src', 'ui', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json'];
const OUTPUTS = ['dist/main.js', 'dist/ui/index.html'];

/** Newest modification time under a file or folder (node_modules and dot folders aside). */
function newest(file) {
  if (!existsSync(file)) return 0;
  const info = statSync(file);
  if (!info.isDirectory()) return info.mtimeMs;
  let latest = info.mtimeMs;
  for (const entry of readdirSync(file)) {
    if (entry === 'node_modules' || entry.startsWith('.')) continue;
    latest = Math.max(latest, newest(path.join(file, entry)));
  }
  return latest;
}

const built = OUTPUTS.map((f) => path.join(root, f));
const missing = built.some((f) => !existsSync(f));
const oldestOutput = missing ? 0 : Math.min(...built.map((f) => statSync(f).mtimeMs));
const latestSource = Math.max(...SOURCES.map((f) => newest(path.join(root, f))));

if (!missing && oldestOutput >= latestSource) {
  process.stderr.write('dist/ is up to date: starting without a build\n');
} else {
  process.stderr.write(`${missing ? 'dist/ is missing' : 'the sources changed since the last build'}: building…\n`);
  const result = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}
