/**
 * runProcess(): the only place that spawns a child. Argv arrays only (no
 * shell), a minimal environment (credentials never reach a child), a
 * wall-clock timeout, AbortSignal support, SIGTERM then SIGKILL, bounded
 * stdout capture and the tail of stderr for error messages.
 */
import { spawn, type SpawnOptionsWithStdioTuple } from 'node:child_process';
import { AsyncLocalStorage } from 'node:async_hooks';
import { accessSync, constants } from 'node:fs';

/**
 * The memory ceiling of every child (FFMPEG_MAX_MEMORY_MB): an address-space
 * limit (RLIMIT_AS) set by util-linux's prlimit, which then execs the
 * command in the same process, so the pid, signals and exit status are the
 * child's own. A 3 KB file can otherwise make ffprobe and ffmpeg allocate
 * gigabytes (docs/security.md). 0 turns it off.
 */
export interface ChildLimits {
  maxMemoryBytes: number;
  /** The prlimit binary; undefined: not found, children run without a ceiling (warned at startup). */
  prlimitPath: string | undefined;
}

const DEFAULT_MAX_MEMORY_MB = 512;

function findUtil(name: string): string | undefined {
  for (const candidate of [`/usr/bin/${name}`, `/bin/${name}`, `/usr/local/bin/${name}`]) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Try the next place.
    }
  }
  return undefined;
}

let childLimits: ChildLimits = {
  maxMemoryBytes: DEFAULT_MAX_MEMORY_MB * 1024 * 1024,
  prlimitPath: findUtil('prlimit'),
};

/**
 * util-linux's setpriv, to give every child a parent-death signal (SIGKILL): when the gateway dies, even by
 * kill -9, its ffmpeg runs die with it instead of writing on into folders the next start sweeps. The signal is
 * kept across the exec of prlimit and ffmpeg. Node spawns from its main thread, which lives as long as the
 * process (the signal follows the thread that forked). undefined: not installed, children may outlive us.
 */
const setprivPath = findUtil('setpriv');

/** The argv that runs `command` with the parent-death signal and the memory ceiling, when available. */
function wrappedCommand(command: string, args: readonly string[]): [string, string[]] {
  const { maxMemoryBytes, prlimitPath } = childLimits;
  let argv = [command, ...args];
  if (maxMemoryBytes > 0 && prlimitPath !== undefined) argv = [prlimitPath, `--as=${maxMemoryBytes}`, '--', ...argv];
  if (setprivPath !== undefined) argv = [setprivPath, '--pdeathsig', 'KILL', '--', ...argv];
  return [argv[0]!, argv.slice(1)];
}

/** Sets the ceiling for every later spawn (gateway startup, from FFMPEG_MAX_MEMORY_MB). */
export function configureChildLimits(limits: Partial<ChildLimits>): ChildLimits {
  childLimits = { ...childLimits, ...limits };
  return childLimits;
}

export function currentChildLimits(): Readonly<ChildLimits> {
  return childLimits;
}

/**
 * ffmpeg's own `-max_alloc` (largest single allocation): half the ceiling, so one absurd table fails cleanly
 * inside ffmpeg before the OS limit is reached. undefined when there is no ceiling.
 */
export function maxAllocBytes(): number | undefined {
  return childLimits.maxMemoryBytes > 0 ? Math.floor(childLimits.maxMemoryBytes / 2) : undefined;
}

/** What ran out of memory looks like: an allocation refused (ENOMEM) or a crash on the NULL it returned. */
const OUT_OF_MEMORY_TEXT = /Cannot allocate memory|out of memory|std::bad_alloc|failed to allocate/i;
const CRASH_SIGNALS: ReadonlySet<string> = new Set(['SIGSEGV', 'SIGABRT', 'SIGBUS']);

export interface RunOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  /** Maximum stdout bytes kept in memory (ffprobe JSON); more is an error. */
  maxStdoutBytes?: number;
  /** Called for each complete stdout line instead of buffering stdout. */
  onStdoutLine?: (line: string) => void;
  /** Grace period between SIGTERM and SIGKILL. */
  killGraceMs?: number;
  /** Admission to run; defaults to the gate of the current async context (see runWithProcessGate). */
  gate?: ProcessGate;
}

/**
 * Admission control for children: acquire() resolves, maybe after waiting,
 * with the function that frees the slot, or rejects (queue full, aborted).
 * The media layer knows nothing of who decides; the service installs a gate
 * around each request with runWithProcessGate(), so every spawn made for that
 * request, by any module, waits for a slot.
 */
export interface ProcessGate {
  acquire(signal: AbortSignal | undefined): Promise<() => void>;
}

const gateContext = new AsyncLocalStorage<ProcessGate>();

/** Runs fn with every runProcess() inside it (however deep) admitted through gate. */
export function runWithProcessGate<T>(gate: ProcessGate, fn: () => T): T {
  return gateContext.run(gate, fn);
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderrTail: string;
  elapsedMs: number;
  timedOut: boolean;
  aborted: boolean;
  /** Under a memory ceiling, the child reported an allocation failure or crashed (see OUT_OF_MEMORY_TEXT). */
  outOfMemory: boolean;
}

export class ProcessError extends Error {
  constructor(
    message: string,
    readonly argv: readonly string[],
    readonly result: Partial<RunResult>,
  ) {
    super(message);
    this.name = 'ProcessError';
  }
}

const STDERR_TAIL_BYTES = 4096;

/** Environment handed to children: enough to run, nothing secret. */
function childEnv(): NodeJS.ProcessEnv {
  // MALLOC_ARENA_MAX: glibc reserves 64 MB of address space per thread arena; decoder threads would use up
  // the ceiling (RLIMIT_AS counts reservations, not use) without holding any more memory.
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    LC_ALL: 'C',
    MALLOC_ARENA_MAX: '2',
  };
  return env;
}

/** Live children, so a shutdown can kill what is left. */
const liveChildren = new Set<import('node:child_process').ChildProcess>();

export function liveProcessCount(): number {
  return liveChildren.size;
}

export function killAllChildren(): void {
  for (const child of liveChildren) child.kill('SIGKILL');
}

export function runProcess(command: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const gate = options.gate ?? gateContext.getStore();
  if (!gate) return spawnAndWait(command, args, options);
  return gate.acquire(options.signal).then(
    (release) => {
      let released = false;
      const free = (): void => {
        if (!released) release();
        released = true;
      };
      return spawnAndWait(command, args, options).finally(free);
    },
    (error: unknown) => {
      if (options.signal?.aborted)
        throw new ProcessError('aborted before start', [command, ...args], { aborted: true });
      throw error;
    },
  );
}

function spawnAndWait(command: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const started = performance.now();
  const maxStdout = options.maxStdoutBytes ?? 8 * 1024 * 1024;
  const killGraceMs = options.killGraceMs ?? 2000;
  return new Promise<RunResult>((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(new ProcessError('aborted before start', [command, ...args], { aborted: true }));
      return;
    }
    const limited = childLimits.maxMemoryBytes > 0 && childLimits.prlimitPath !== undefined;
    const spawnOptions: SpawnOptionsWithStdioTuple<'ignore', 'pipe', 'pipe'> = {
      shell: false,
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    };
    const child = spawn(...wrappedCommand(command, args), spawnOptions);
    liveChildren.add(child);
    let stdout = '';
    let stdoutBytes = 0;
    let lineBuffer = '';
    let stderrTail = '';
    let timedOut = false;
    let aborted = false;
    let overflow = false;
    let killTimer: NodeJS.Timeout | undefined;

    const terminate = (): void => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      killTimer ??= setTimeout(() => child.kill('SIGKILL'), killGraceMs);
      killTimer.unref();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      terminate();
    }, options.timeoutMs);
    timer.unref();
    const onAbort = (): void => {
      aborted = true;
      terminate();
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });

    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (options.onStdoutLine) {
        lineBuffer += chunk;
        let nl: number;
        while ((nl = lineBuffer.indexOf('\n')) >= 0) {
          options.onStdoutLine(lineBuffer.slice(0, nl).trimEnd());
          lineBuffer = lineBuffer.slice(nl + 1);
        }
        return;
      }
      stdoutBytes += Buffer.byteLength(chunk);
      if (stdoutBytes > maxStdout) {
        overflow = true;
        terminate();
        return;
      }
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderrTail = (stderrTail + chunk).slice(-STDERR_TAIL_BYTES);
    });

    const finish = (): void => {
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      options.signal?.removeEventListener('abort', onAbort);
      liveChildren.delete(child);
    };
    child.on('error', (error) => {
      finish();
      reject(new ProcessError(`cannot run ${command}: ${error.message}`, [command, ...args], { stderrTail }));
    });
    child.on('close', (code, signal) => {
      finish();
      if (options.onStdoutLine && lineBuffer.length > 0) options.onStdoutLine(lineBuffer.trimEnd());
      const result: RunResult = {
        code,
        signal,
        stdout,
        stderrTail,
        elapsedMs: performance.now() - started,
        timedOut,
        aborted,
        outOfMemory:
          limited &&
          !timedOut &&
          !aborted &&
          code !== 0 &&
          (OUT_OF_MEMORY_TEXT.test(stderrTail) || (signal !== null && CRASH_SIGNALS.has(signal))),
      };
      if (overflow) {
        reject(new ProcessError(`${command} wrote more than ${maxStdout} bytes`, [command, ...args], result));
        return;
      }
      resolve(result);
    });
  });
}
