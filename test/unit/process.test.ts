/** runProcess(): the child's environment, the wall-clock timeout, SIGTERM then SIGKILL, abort. */
import { afterEach, describe, expect, it } from 'vitest';
import { configureChildLimits, currentChildLimits, liveProcessCount, runProcess } from '../../src/media/process.js';
import { budgetMs } from '../../src/pipeline/render.js';

const SECRET = 'imagicle-password-in-parent-env';

afterEach(() => {
  delete process.env.IMAGICLE_PASSWORD;
  delete process.env.GATEWAY_API_KEYS;
});

describe('runProcess', () => {
  it('hands the child PATH, LC_ALL and MALLOC_ARENA_MAX only, never the parent environment', async () => {
    process.env.IMAGICLE_PASSWORD = SECRET;
    process.env.GATEWAY_API_KEYS = SECRET;
    const r = await runProcess('env', [], { timeoutMs: 5000 });
    expect(r.code).toBe(0);
    const names = r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('=')[0]);
    expect(names.sort()).toEqual(['LC_ALL', 'MALLOC_ARENA_MAX', 'PATH']);
    expect(r.stdout).not.toContain(SECRET);
  });

  it('runs every child under the memory ceiling (RLIMIT_AS through prlimit), the default 512 MB', async () => {
    const limits = currentChildLimits();
    if (!limits.prlimitPath) {
      if (process.env.CI) throw new Error('prlimit (util-linux) is missing on CI');
      console.warn('skipped: prlimit (util-linux) is not installed here');
      return;
    }
    expect(limits.maxMemoryBytes).toBe(512 * 1024 * 1024);
    const r = await runProcess('sh', ['-c', 'ulimit -v'], { timeoutMs: 5000 });
    expect(r.stdout.trim()).toBe(String(512 * 1024));
    configureChildLimits({ maxMemoryBytes: 64 * 1024 * 1024 });
    try {
      const small = await runProcess('sh', ['-c', 'ulimit -v'], { timeoutMs: 5000 });
      expect(small.stdout.trim()).toBe(String(64 * 1024));
    } finally {
      configureChildLimits({ maxMemoryBytes: limits.maxMemoryBytes });
    }
  });

  it('kills a process that outlives its wall-clock budget', async () => {
    const r = await runProcess('sleep', ['30'], { timeoutMs: 100 });
    expect(r.timedOut).toBe(true);
    expect(r.signal).toBe('SIGTERM');
    expect(liveProcessCount()).toBe(0);
  });

  it('SIGKILLs a process that ignores SIGTERM', async () => {
    // An ignored signal stays ignored across exec.
    const r = await runProcess('sh', ['-c', "trap '' TERM; exec sleep 30"], { timeoutMs: 100, killGraceMs: 100 });
    expect(r.timedOut).toBe(true);
    expect(r.signal).toBe('SIGKILL');
  });

  it('kills the process when the signal aborts, and refuses to start after', async () => {
    const controller = new AbortController();
    const running = runProcess('sleep', ['30'], { timeoutMs: 60_000, signal: controller.signal });
    controller.abort();
    const r = await running;
    expect(r.aborted).toBe(true);
    await expect(runProcess('true', [], { timeoutMs: 1000, signal: controller.signal })).rejects.toThrow(/aborted/);
    expect(liveProcessCount()).toBe(0);
  });
});

describe('budgetMs (render.ts)', () => {
  const limits = { maxDurationSeconds: 43_200, processTimeoutMs: 3_600_000 };
  it('scales with the input, from a floor, under the cap', () => {
    expect(budgetMs(limits, 10)).toBe(61_000);
    expect(budgetMs(limits, 3600)).toBe(420_000);
    expect(budgetMs(limits, 43_200)).toBe(3_600_000);
    expect(budgetMs({ ...limits, processTimeoutMs: 5000 }, undefined)).toBe(5000);
  });
});
