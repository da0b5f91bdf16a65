/**
 * A gateway killed with SIGKILL takes its ffmpeg runs with it: every child has a parent-death signal
 * (setpriv --pdeathsig, media/process.ts), kept across the exec of prlimit and ffmpeg.
 */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';

const hasSetpriv = ['/usr/bin/setpriv', '/bin/setpriv', '/usr/local/bin/setpriv'].some((p) => existsSync(p));
if (!hasSetpriv && process.env.CI) throw new Error('setpriv (util-linux) is missing on CI');

/** Alive and not a zombie waiting to be reaped. */
function running(pid: number): boolean {
  try {
    const state = /\)\s+(\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1];
    return state !== undefined && state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

function childrenOf(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

describe.skipIf(!hasSetpriv)('children of a killed gateway', () => {
  it('ffmpeg dies when the process that ran it is killed with SIGKILL', async () => {
    const processModule = path.resolve('src/media/process.ts');
    const script =
      `import { runProcess } from ${JSON.stringify(processModule)};\n` +
      "await runProcess('ffmpeg', ['-v', 'error', '-re', '-f', 'lavfi', '-i', 'anullsrc=r=8000', '-t', '600', " +
      "'-f', 'null', '-'], { timeoutMs: 600000 });";
    const parent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: 'ignore',
    });
    let ffmpeg: number | undefined;
    for (let i = 0; i < 200 && ffmpeg === undefined; i++) {
      await sleep(50);
      ffmpeg = childrenOf(parent.pid!).find((pid) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'ffmpeg');
    }
    expect(ffmpeg, 'ffmpeg started under the parent (setpriv and prlimit exec it in place)').toBeDefined();
    parent.kill('SIGKILL');
    for (let i = 0; i < 100 && running(ffmpeg!); i++) await sleep(50);
    expect(running(ffmpeg!)).toBe(false);
  });
});
