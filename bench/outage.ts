/**
 * Bench case `outage` (issue 21, BENCH_ONLY=outage): a weekend outage. Imagicle (the emulator, in its own process)
 * answers every upload 503; 8 clients upload different 1.5 s stereo Opus calls with `Prefer: respond-async` until N
 * are queued; then the backlog is measured (jobs API, /metrics, RSS), the gateway is killed with SIGKILL and
 * restarted until /readyz answers 200, Imagicle is let back in, and the drain is timed until every recording is
 * in the emulator. The emulator's store is then counted by pbxCallId: each recording must be there exactly once.
 *
 * The drain's yardstick is the same gateway, same settings, same upstream, with a small backlog
 * (BENCH_OUTAGE_BASELINE_N, default 200), measured in the same run.
 *
 * Modes: `spool` (one `serve` process, DELIVERY=wait) and `distributed` (a private redis-server, one ROLE=api and
 * one ROLE=worker process; no restart row).
 *
 * Settings (environment of `npm run bench`):
 *   BENCH_OUTAGE_N=2000,20000     backlog sizes for the spool (distributed runs at the largest)
 *   BENCH_OUTAGE_MODES=spool,distributed
 *   BENCH_OUTAGE_REPEATS=3        runs per size; the table shows medians
 *   BENCH_OUTAGE_BASELINE_N=200   the small backlog the drain rate is compared with
 *   BENCH_OUTAGE_DRAIN_MIN=8      cap on the drain phase (what was delivered by then is reported)
 *   BENCH_OUTAGE_ACCEPT_MIN=40    cap on the upload phase (the run goes on with what was accepted)
 *   BENCH_OUTAGE_HOLD_MIN=0       a weekend: after the uploads, Imagicle stays down until every job is prepared
 *                                 (none `received`) or this many minutes passed, in the baseline too; the drain
 *                                 is then pure delivery (0: Imagicle returns as soon as the backlog is measured)
 *   BENCH_OUTAGE_CLIENTS=8        concurrent uploaders
 *   BENCH_OUTAGE_MAIN=path        another build's main.js (two builds compared in one session); default dist/main.js
 *   BENCH_OUTAGE_LABEL=text       written next to the table (e.g. "before", "after")
 *   BENCH_OUTAGE_REPORT=file      no run: the tables of a saved JSON (complete or not) written again
 *   SPOOL_CONCURRENCY=n           passed to the gateway (default: the gateway's own)
 *
 * Every child process runs in its own process group and every run in its own temp folder; both are removed when
 * the bench ends, fails or is interrupted. Results: a table on stdout, all figures as JSON in
 * bench/work/outage-<time>.json, and the table in docs/benchmarks.md between the `bench:outage` markers.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';

const run = promisify(execFile);

// ---------------------------------------------------------------- settings

const numbers = (value: string | undefined, fallback: number[]): number[] =>
  value === undefined || value.trim() === ''
    ? fallback
    : value.split(',').map((v) => {
        const n = Number(v.trim());
        if (!Number.isInteger(n) || n < 20) throw new Error(`BENCH_OUTAGE_*: "${v}" is not a whole number ≥ 20`);
        return n;
      });
const SIZES = numbers(process.env.BENCH_OUTAGE_N, [2000, 20_000]);
const MODES = (process.env.BENCH_OUTAGE_MODES ?? 'spool,distributed').split(',').map((m) => m.trim());
const REPEATS = Number(process.env.BENCH_OUTAGE_REPEATS ?? 3);
if (!Number.isInteger(REPEATS) || REPEATS < 1) throw new Error('BENCH_OUTAGE_REPEATS must be a whole number ≥ 1');
const BASELINE_N = numbers(process.env.BENCH_OUTAGE_BASELINE_N, [200])[0]!;
const DRAIN_CAP_MS = Number(process.env.BENCH_OUTAGE_DRAIN_MIN ?? 8) * 60_000;
const HOLD_MS = Number(process.env.BENCH_OUTAGE_HOLD_MIN ?? 0) * 60_000;
if (!Number.isFinite(HOLD_MS) || HOLD_MS < 0) throw new Error('BENCH_OUTAGE_HOLD_MIN must be a number ≥ 0');
const ACCEPT_CAP_MS = Number(process.env.BENCH_OUTAGE_ACCEPT_MIN ?? 40) * 60_000;
const CLIENTS = Number(process.env.BENCH_OUTAGE_CLIENTS ?? 8);
const MAIN_OVERRIDE = process.env.BENCH_OUTAGE_MAIN;
const LABEL = process.env.BENCH_OUTAGE_LABEL;
/** Requests per latency figure (jobs page, search, /metrics). */
const SAMPLES = 21;
const START_MS = 60_000;
const READY_CAP_MS = 600_000;
const RECORDINGS_PATH = '/fw/Apps/Recorder/WebAPI/Recordings';

// ---------------------------------------------------------------- processes and folders, cleaned up on any exit

const groups = new Set<number>();
const folders = new Set<string>();

function cleanUp(): void {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  groups.clear();
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
  folders.clear();
}
process.on('exit', cleanUp);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

const CLOCK_TICKS = 100;
const PAGE = 4096;

interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  url: string;
  log: string;
  exited: Promise<number | null>;
  /** CPU seconds of the process itself, and of its children it has waited for (ffmpeg). */
  cpu(): { self: number; children: number };
  rssMb(): number;
  tail(lines?: number): string;
  /** SIGTERM, then SIGKILL of the whole group after a grace period. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL of the whole process group at once, as a crash or a container kill. */
  crash(): Promise<void>;
}

function tailOf(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Starts a process in its own group, its output in a log file; resolves once a log line matches `marker`. */
async function startChild(
  name: string,
  command: string,
  args: string[],
  env: Record<string, string>,
  dir: string,
  marker: RegExp | undefined,
): Promise<Child> {
  const log = path.join(dir, `${name}-${Date.now()}.log`);
  const fd = openSync(log, 'a');
  const proc = spawn(command, args, {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', fd, fd],
    detached: true,
  });
  closeSync(fd);
  if (proc.pid === undefined) throw new Error(`${name}: could not start ${command}`);
  const pid = proc.pid;
  groups.add(pid);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const killGroup = (signal: NodeJS.Signals): void => {
    try {
      process.kill(-pid, signal);
    } catch {
      // Already gone.
    }
  };
  let url = '';
  if (marker) {
    const deadline = Date.now() + START_MS;
    let gone = false;
    void exited.then(() => (gone = true));
    for (;;) {
      const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
      const line = text.split('\n').find((l) => marker.test(l));
      if (line) {
        url = (JSON.parse(line) as { url?: string }).url ?? '';
        break;
      }
      if (gone) throw new Error(`${name} exited before it was listening:\n${tailOf(log)}`);
      if (Date.now() > deadline) {
        killGroup('SIGKILL');
        throw new Error(`${name} was not listening after ${START_MS / 1000} s:\n${tailOf(log)}`);
      }
      await sleep(50);
    }
  }
  const stat = (): string[] => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return {
    name,
    proc,
    pid,
    url,
    log,
    exited,
    cpu: () => {
      // Fields after "(comm) ": state is [0], utime [11], stime [12], cutime [13], cstime [14].
      const f = stat();
      return {
        self: (Number(f[11]) + Number(f[12])) / CLOCK_TICKS,
        children: (Number(f[13]) + Number(f[14])) / CLOCK_TICKS,
      };
    },
    rssMb: () => (Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * PAGE) / 2 ** 20,
    tail: (lines) => tailOf(log, lines),
    stop: async (graceMs = 15_000) => {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        killGroup('SIGKILL');
        groups.delete(pid);
        return;
      }
      killGroup('SIGTERM');
      const timer = setTimeout(() => killGroup('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
      killGroup('SIGKILL');
      groups.delete(pid);
    },
    crash: async () => {
      killGroup('SIGKILL');
      await exited;
      groups.delete(pid);
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const loadAverage = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

// ---------------------------------------------------------------- HTTP

const agent = new Agent({ connections: 64, headersTimeout: 180_000, bodyTimeout: 180_000, keepAliveTimeout: 10_000 });

async function get(url: string): Promise<{ status: number; body: Buffer; ms: number }> {
  const t0 = performance.now();
  const res = await request(url, { dispatcher: agent });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, body, ms: performance.now() - t0 };
}

async function send(url: string, method: 'POST' | 'DELETE', json?: unknown): Promise<number> {
  const res = await request(url, {
    method,
    dispatcher: agent,
    ...(json === undefined ? {} : { body: JSON.stringify(json), headers: { 'content-type': 'application/json' } }),
  });
  await res.body.dump();
  return res.statusCode;
}

const BOUNDARY = 'bench-outage-boundary-7f3a';

/** One multipart upload as Imagicle's drop-in takes it: jsondata, then the attachment. */
function multipart(metadata: string, audio: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="jsondata"\r\nContent-Type: application/json\r\n\r\n` +
        `${metadata}\r\n--${BOUNDARY}\r\nContent-Disposition: form-data; name="attachment"; filename="call.opus"\r\n` +
        'Content-Type: audio/ogg\r\n\r\n',
    ),
    audio,
    Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
  ]);
}

async function uploadAsync(base: string, pbxCallId: string, audio: Buffer): Promise<{ status: number; body: string }> {
  const metadata = JSON.stringify({
    startDateTime: '2026-11-27T18:15:00.0000000Z',
    direction: 1,
    localParty: { username: 'bench', phoneNumber: '100' },
    remoteParty: { phoneNumber: '200' },
    pbxCallId,
  });
  const res = await request(`${base}${RECORDINGS_PATH}`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, prefer: 'respond-async' },
    body: multipart(metadata, audio),
  });
  return { status: res.statusCode, body: await res.body.text() };
}

// ---------------------------------------------------------------- one run

interface Stack {
  /** Where uploads, the jobs API and /metrics go. */
  front: Child;
  /** The process that renders and delivers. */
  worker: Child;
  redis: Child | undefined;
  /** kill -9 and start again on the same folders and port (spool mode only). */
  restart?: () => Promise<{ healthzMs: number | undefined; readyMs: number }>;
  stop(): Promise<void>;
}

export interface RunResult {
  mode: string;
  n: number;
  accepted: number;
  acceptCapped: boolean;
  refusals: number;
  acceptSeconds: number;
  load: { start: string; backlogFull: string; end: string };
  acceptRate: { start: number; end: number };
  cpuPerUploadMs: { start: number; end: number };
  redisCpuPerUploadMs?: { start: number; end: number };
  jobsPage?: { p50Ms: number; bytes: number };
  search?: { p50Ms: number; hits: number[] };
  metrics?: { p50Ms: number };
  rssMb?: { front: number; worker?: number; redis?: number };
  restart?: { healthzMs: number | undefined; readyMs: number };
  /** Jobs per state when Imagicle returns: how much of the backlog was prepared during the outage. */
  statesAtReturn?: Record<string, number>;
  /** How long Imagicle stayed down after the backlog was measured (BENCH_OUTAGE_HOLD_MIN), for it to be prepared. */
  holdSeconds?: number;
  drain: {
    delivered: number;
    seconds: number;
    capped: boolean;
    rate: number;
    t50: number | undefined;
    t90: number | undefined;
    cpuPerDeliveryMs: number;
    childCpuPerDeliveryMs: number;
  };
  exact: { distinct: number; duplicates: number; missing: number; unexpected: number };
}

async function startEmulator(dir: string, main: string): Promise<Child> {
  return startChild(
    'emulator',
    process.execPath,
    [main, 'emulator', '--port', '0', '--dir', path.join(dir, 'emulator')],
    { LOG_LEVEL: 'info' },
    dir,
    /emulator listening/i,
  );
}

function gatewayEnv(dir: string, emulatorUrl: string): Record<string, string> {
  return {
    HOST: '127.0.0.1',
    PORT: '0',
    IMAGICLE_URL: emulatorUrl,
    ALLOW_ANONYMOUS: 'true',
    SPOOL_DIR: path.join(dir, 'spool'),
    TMP_DIR: path.join(dir, 'tmp'),
    SPOOL_MAX_BYTES: String(200 * 1024 ** 3),
    WATCH_STATE_DIR: path.join(dir, 'watch-state'),
    LOG_LEVEL: 'info',
    // A setting under study (e.g. SPOOL_CONCURRENCY=2 against 4), passed through when set.
    ...(process.env.SPOOL_CONCURRENCY ? { SPOOL_CONCURRENCY: process.env.SPOOL_CONCURRENCY } : {}),
  };
}

async function spoolStack(dir: string, main: string, emulatorUrl: string): Promise<Stack> {
  const env = gatewayEnv(dir, emulatorUrl);
  const start = (port: string): Promise<Child> =>
    startChild('gateway', process.execPath, [main, 'serve'], { ...env, PORT: port }, dir, /gateway listening/);
  let gateway = await start('0');
  const stack: Stack = {
    front: gateway,
    worker: gateway,
    redis: undefined,
    restart: async () => {
      const port = new URL(gateway.url).port;
      await gateway.crash();
      const t0 = performance.now();
      const next = await startChild(
        'gateway',
        process.execPath,
        [main, 'serve'],
        { ...env, PORT: port },
        dir,
        undefined,
      );
      next.url = `http://127.0.0.1:${port}`;
      let healthzMs: number | undefined;
      for (;;) {
        if (next.proc.exitCode !== null) throw new Error(`the restarted gateway exited:\n${next.tail()}`);
        if (performance.now() - t0 > READY_CAP_MS)
          throw new Error(`the restarted gateway was not ready after ${READY_CAP_MS / 1000} s:\n${next.tail()}`);
        if (healthzMs === undefined) {
          const h = await get(`${next.url}/healthz`).catch(() => undefined);
          if (h?.status === 200) healthzMs = performance.now() - t0;
        }
        const r = await get(`${next.url}/readyz`).catch(() => undefined);
        if (r?.status === 200) {
          const readyMs = performance.now() - t0;
          gateway = next;
          stack.front = next;
          stack.worker = next;
          return { healthzMs, readyMs };
        }
        await sleep(20);
      }
    },
    stop: () => stack.front.stop(),
  };
  return stack;
}

async function distributedStack(dir: string, main: string, emulatorUrl: string): Promise<Stack> {
  const port = await freePort();
  const redis = await startChild(
    'redis',
    'redis-server',
    [
      ...['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes'],
      ...['--appendfsync', 'always', '--maxmemory-policy', 'noeviction', '--protected-mode', 'no'],
    ],
    {},
    dir,
    undefined,
  );
  for (let waited = 0; !/Ready to accept connections/i.test(redis.tail(200)); waited += 50) {
    if (redis.proc.exitCode !== null || waited > START_MS)
      throw new Error(`redis-server did not start:\n${redis.tail()}`);
    await sleep(50);
  }
  const env = {
    ...gatewayEnv(dir, emulatorUrl),
    QUEUE_URL: `redis://127.0.0.1:${port}/0`,
    BLOB_DIR: path.join(dir, 'blob'),
  };
  const api = await startChild(
    'api',
    process.execPath,
    [main, 'serve'],
    { ...env, ROLE: 'api' },
    dir,
    /gateway listening/,
  );
  const worker = await startChild(
    'worker',
    process.execPath,
    [main, 'serve'],
    { ...env, ROLE: 'worker', SPOOL_DIR: path.join(dir, 'spool-worker') },
    dir,
    /gateway listening/,
  );
  return {
    front: api,
    worker,
    redis,
    stop: async () => {
      await Promise.all([api.stop(), worker.stop()]);
      await redis.stop();
    },
  };
}

/** Jobs per state: the API's counts when it gives them, else counted from its (then complete) list. */
async function stateCounts(base: string): Promise<Record<string, number>> {
  const r = await get(`${base}/v1/jobs?limit=1`);
  if (r.status !== 200)
    throw new Error(`GET /v1/jobs?limit=1 answered ${r.status}: ${r.body.toString().slice(0, 300)}`);
  const parsed = JSON.parse(r.body.toString()) as { counts?: Record<string, number>; jobs: Array<{ state: string }> };
  if (parsed.counts) return parsed.counts;
  const counts: Record<string, number> = {};
  for (const job of parsed.jobs) counts[job.state] = (counts[job.state] ?? 0) + 1;
  return counts;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
};

async function p50(url: string, check: (status: number, body: Buffer) => void): Promise<{ ms: number; last: Buffer }> {
  const times: number[] = [];
  let last: Buffer = Buffer.alloc(0);
  for (let i = 0; i < SAMPLES; i++) {
    const r = await get(url);
    check(r.status, r.body);
    times.push(r.ms);
    last = r.body;
  }
  return { ms: median(times), last };
}

/**
 * One outage: N queued while Imagicle answers 503, the backlog measured (unless `baseline`), a kill -9 and restart
 * (spool), Imagicle back, the drain timed and the emulator's store counted.
 */
async function outageRun(
  mode: 'spool' | 'distributed',
  n: number,
  audio: Buffer,
  main: string,
  baseline: boolean,
): Promise<RunResult> {
  const label = `[${mode} ${n}${baseline ? ' baseline' : ''}]`;
  const say = (text: string): void => void process.stdout.write(`${label} ${text}\n`);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-outage-'));
  folders.add(dir);
  const loadStart = loadAverage();
  const emulator = await startEmulator(dir, main);
  let running: Stack | undefined;
  try {
    // Imagicle down: every upload answered 503 until the faults are cleared.
    const faulted = await send(`${emulator.url}/emulator/faults`, 'POST', { status: 503, count: 1_000_000_000 });
    if (faulted !== 201) throw new Error(`the emulator refused the fault (${faulted})`);
    running =
      mode === 'spool' ? await spoolStack(dir, main, emulator.url) : await distributedStack(dir, main, emulator.url);
    const s = running;
    say(`load ${loadStart}; uploading ${n} with ${CLIENTS} clients, Imagicle answering 503`);

    // ------------------------------------------------------------ uploads
    const runId = `${Date.now().toString(36)}`;
    const idOf = (i: number): string => `outage-${runId}-${String(i).padStart(6, '0')}`;
    const marks = [Math.round(n * 0.05), Math.round(n * 0.1), Math.round(n * 0.95), n];
    const samples = new Map<number, { t: number; cpu: number; redis: number }>();
    const acceptedIds: string[] = [];
    let accepted = 0;
    let inFlight = 0;
    let issued = 0;
    let refusals = 0;
    let lastRefusal = '';
    const t0 = performance.now();
    const deadline = t0 + ACCEPT_CAP_MS;
    let progressAt = t0;
    const client = async (): Promise<void> => {
      while (accepted + inFlight < n && performance.now() < deadline) {
        const id = idOf(issued++);
        inFlight++;
        let r: { status: number; body: string };
        try {
          r = await uploadAsync(s.front.url, id, audio);
        } catch (error) {
          r = { status: 0, body: error instanceof Error ? error.message : String(error) };
        } finally {
          inFlight--;
        }
        if (r.status === 202) {
          accepted++;
          acceptedIds.push(id);
          if (marks.includes(accepted)) {
            samples.set(accepted, {
              t: performance.now(),
              cpu: s.front.cpu().self,
              redis: s.redis?.cpu().self ?? 0,
            });
          }
          if (performance.now() - progressAt > 30_000) {
            progressAt = performance.now();
            say(`${accepted} accepted in ${((progressAt - t0) / 1000).toFixed(0)} s (load ${loadAverage()})`);
          }
        } else {
          refusals++;
          lastRefusal = `${r.status} ${r.body.slice(0, 300)}`;
          if (refusals > 200 + n / 10) throw new Error(`${refusals} uploads refused; last: ${lastRefusal}`);
          if (s.front.proc.exitCode !== null) throw new Error(`the gateway exited:\n${s.front.tail()}`);
          await sleep(200);
        }
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, client));
    const acceptSeconds = (performance.now() - t0) / 1000;
    const acceptCapped = accepted < n;
    if (acceptCapped) say(`upload phase capped after ${ACCEPT_CAP_MS / 60_000} min: ${accepted} of ${n} accepted`);
    const window = (a: number, b: number): { rate: number; cpu: number; redis: number } => {
      const sa = samples.get(marks[a]!);
      const sb = samples.get(marks[b]!);
      if (!sa || !sb) return { rate: NaN, cpu: NaN, redis: NaN };
      const count = marks[b]! - marks[a]!;
      return {
        rate: count / ((sb.t - sa.t) / 1000),
        cpu: ((sb.cpu - sa.cpu) * 1000) / count,
        redis: ((sb.redis - sa.redis) * 1000) / count,
      };
    };
    const first = window(0, 1);
    const last = window(2, 3);
    const loadFull = loadAverage();
    say(
      `${accepted} accepted in ${acceptSeconds.toFixed(1)} s; rate ${first.rate.toFixed(0)} → ${last.rate.toFixed(0)}/s, ` +
        `CPU/upload ${first.cpu.toFixed(1)} → ${last.cpu.toFixed(1)} ms (load ${loadFull})`,
    );

    // ------------------------------------------------------------ the backlog, measured
    let jobsPage: RunResult['jobsPage'];
    let search: RunResult['search'];
    let metrics: RunResult['metrics'];
    let rssMb: RunResult['rssMb'];
    let restart: RunResult['restart'];
    if (!baseline) {
      rssMb = {
        front: s.front.rssMb(),
        ...(s.worker !== s.front ? { worker: s.worker.rssMb() } : {}),
        ...(s.redis ? { redis: s.redis.rssMb() } : {}),
      };
      const ok = (what: string) => (status: number, body: Buffer) => {
        if (status !== 200) throw new Error(`${what} answered ${status}: ${body.toString().slice(0, 300)}`);
      };
      const page = await p50(`${s.front.url}/v1/jobs?limit=50`, ok('GET /v1/jobs?limit=50'));
      jobsPage = { p50Ms: page.ms, bytes: page.last.length };
      const hits: number[] = [];
      const times: number[] = [];
      for (let i = 0; i < SAMPLES; i++) {
        const id = acceptedIds[Math.floor(Math.random() * acceptedIds.length)]!;
        const r = await get(`${s.front.url}/v1/jobs?pbxCallId=${encodeURIComponent(id)}`);
        ok('GET /v1/jobs?pbxCallId=')(r.status, r.body);
        times.push(r.ms);
        // The jobs answered; negative when some of them are not the one asked for.
        const parsed = JSON.parse(r.body.toString()) as { jobs: Array<{ pbxCallId?: string }> };
        const exact = parsed.jobs.filter((j) => j.pbxCallId === id).length;
        hits.push(exact === parsed.jobs.length ? exact : -parsed.jobs.length);
      }
      search = { p50Ms: median(times), hits: [...new Set(hits)] };
      const m = await p50(`${s.front.url}/metrics`, ok('GET /metrics'));
      metrics = { p50Ms: m.ms };
      say(
        `jobs page ${page.ms.toFixed(1)} ms (${(page.last.length / 1e6).toFixed(2)} MB), search ${search.p50Ms.toFixed(1)} ms ` +
          `(hits ${search.hits.join(',')}), /metrics ${m.ms.toFixed(1)} ms, RSS ${rssMb.front.toFixed(0)} MB`,
      );
      if (s.restart) {
        restart = await s.restart();
        say(
          `restart after kill -9: /healthz ${restart.healthzMs?.toFixed(0) ?? '-'} ms, /readyz ${restart.readyMs.toFixed(0)} ms`,
        );
      }
    }

    // ------------------------------------------------------------ the rest of the weekend (BENCH_OUTAGE_HOLD_MIN)
    let holdSeconds: number | undefined;
    if (HOLD_MS > 0) {
      const h0 = performance.now();
      let reportAt = h0;
      for (;;) {
        const counts = await stateCounts(s.front.url);
        if ((counts.received ?? 0) === 0 || performance.now() - h0 > HOLD_MS) break;
        if (performance.now() - reportAt > 30_000) {
          reportAt = performance.now();
          say(`holding Imagicle down: ${JSON.stringify(counts)} (load ${loadAverage()})`);
        }
        await sleep(1000);
      }
      holdSeconds = (performance.now() - h0) / 1000;
      say(`held Imagicle down ${holdSeconds.toFixed(0)} s more`);
    }

    // ------------------------------------------------------------ Imagicle back: the drain
    const statesAtReturn = baseline ? undefined : await stateCounts(s.front.url);
    if (statesAtReturn) say(`jobs per state when Imagicle returns: ${JSON.stringify(statesAtReturn)}`);
    const statsUrl = `${emulator.url}/emulator/stats`;
    const deliveredNow = async (): Promise<number> =>
      (JSON.parse((await get(statsUrl)).body.toString()) as { accepted: number }).accepted;
    const cpu0 = s.worker.cpu();
    const d0 = performance.now();
    const cleared = await send(`${emulator.url}/emulator/faults`, 'DELETE');
    if (cleared !== 204) throw new Error(`the emulator did not clear its faults (${cleared})`);
    say(`Imagicle back; draining (cap ${DRAIN_CAP_MS / 60_000} min)`);
    let delivered = 0;
    let t50: number | undefined;
    let t90: number | undefined;
    let reportAt = d0;
    for (;;) {
      delivered = await deliveredNow();
      const elapsed = (performance.now() - d0) / 1000;
      if (t50 === undefined && delivered >= accepted * 0.5) t50 = elapsed;
      if (t90 === undefined && delivered >= accepted * 0.9) t90 = elapsed;
      if (delivered >= accepted || performance.now() - d0 > DRAIN_CAP_MS) break;
      if (s.worker.proc.exitCode !== null) throw new Error(`the ${s.worker.name} exited:\n${s.worker.tail()}`);
      if (performance.now() - reportAt > 30_000) {
        reportAt = performance.now();
        say(`${delivered} delivered in ${elapsed.toFixed(0)} s (load ${loadAverage()})`);
      }
      await sleep(200);
    }
    const drainSeconds = (performance.now() - d0) / 1000;
    const cpu1 = s.worker.cpu();
    const capped = delivered < accepted;
    const drain = {
      delivered,
      seconds: drainSeconds,
      capped,
      rate: delivered / drainSeconds,
      t50,
      t90,
      cpuPerDeliveryMs: delivered > 0 ? ((cpu1.self - cpu0.self) * 1000) / delivered : NaN,
      childCpuPerDeliveryMs: delivered > 0 ? ((cpu1.children - cpu0.children) * 1000) / delivered : NaN,
    };
    say(
      `${delivered} of ${accepted} delivered in ${drainSeconds.toFixed(1)} s${capped ? ' (cap reached)' : ''}: ` +
        `${drain.rate.toFixed(1)}/s, CPU/delivery ${drain.cpuPerDeliveryMs.toFixed(1)} ms + ffmpeg ${drain.childCpuPerDeliveryMs.toFixed(1)} ms`,
    );

    // ------------------------------------------------------------ exactly once
    if (!capped) await sleep(2000); // a late duplicate would show up here
    const stored = JSON.parse((await get(`${emulator.url}/emulator/recordings`)).body.toString()) as Array<{
      metadata: { pbxCallId?: string | null };
    }>;
    const counts = new Map<string, number>();
    for (const r of stored) counts.set(r.metadata.pbxCallId ?? '', (counts.get(r.metadata.pbxCallId ?? '') ?? 0) + 1);
    const expected = new Set(acceptedIds);
    let duplicates = 0;
    let unexpected = 0;
    for (const [id, count] of counts) {
      if (!expected.has(id)) unexpected += count;
      else if (count > 1) duplicates += count - 1;
    }
    const distinct = acceptedIds.filter((id) => counts.has(id)).length;
    const exact = { distinct, duplicates, missing: accepted - distinct, unexpected };
    say(`emulator: ${distinct} distinct, ${duplicates} duplicates, ${exact.missing} missing, ${unexpected} unexpected`);
    const loadEnd = loadAverage();
    return {
      mode,
      n,
      accepted,
      acceptCapped,
      refusals,
      acceptSeconds,
      load: { start: loadStart, backlogFull: loadFull, end: loadEnd },
      acceptRate: { start: first.rate, end: last.rate },
      cpuPerUploadMs: { start: first.cpu, end: last.cpu },
      ...(s.redis ? { redisCpuPerUploadMs: { start: first.redis, end: last.redis } } : {}),
      jobsPage,
      search,
      metrics,
      rssMb,
      restart,
      statesAtReturn,
      holdSeconds,
      drain,
      exact,
    };
  } catch (error) {
    const logs = [running?.front, running?.worker, emulator]
      .filter((c, i, all): c is Child => c !== undefined && all.indexOf(c) === i)
      .map((c) => `--- ${c.name} (last lines of ${c.log})\n${c.tail(15)}`)
      .join('\n');
    throw new Error(`${label} ${error instanceof Error ? error.message : String(error)}\n${logs}`, { cause: error });
  } finally {
    await running?.stop().catch(() => undefined);
    await emulator.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    folders.delete(dir);
  }
}

// ---------------------------------------------------------------- the table

const f0 = (v: number | undefined): string => (v === undefined || Number.isNaN(v) ? '–' : v.toFixed(0));
const f1 = (v: number | undefined): string => (v === undefined || Number.isNaN(v) ? '–' : v.toFixed(1));
const int = (v: number): string => v.toLocaleString('en-US');
const med = (runs: RunResult[], pick: (r: RunResult) => number | undefined): number | undefined => {
  const values = runs.map(pick).filter((v): v is number => v !== undefined && !Number.isNaN(v));
  return values.length === 0 ? undefined : median(values);
};
const runsOf = (runs: RunResult[], pick: (r: RunResult) => number | undefined, fmt = f0): string =>
  runs.length > 1 ? ` (runs ${runs.map((r) => fmt(pick(r))).join(', ')})` : '';

interface ModeResult {
  mode: string;
  /** The drain's cap in minutes (absent in files written before it was recorded: 8). */
  drainCapMin?: number;
  baseline: RunResult[];
  sizes: Array<{ n: number; runs: RunResult[] }>;
}

function table(result: ModeResult, reference: number | undefined): string {
  const base = med(result.baseline, (r) => r.drain.rate);
  const baselineN = result.baseline[0]?.n ?? BASELINE_N;
  const capMin = result.drainCapMin ?? 8;
  const cols = result.sizes;
  const header = `| ${result.mode} | ${cols.map((c) => `${int(c.n)} queued`).join(' | ')} | target at 20,000 |`;
  const rule = `|---|${cols.map(() => '---|').join('')}---|`;
  const row = (name: string, cell: (runs: RunResult[], n: number) => string, target: string): string =>
    `| ${name} | ${cols.map((c) => cell(c.runs, c.n)).join(' | ')} | ${target} |`;
  const rows = [
    row(
      'accept rate at 10 % / 100 % of the backlog (end / start)',
      (r) => {
        const a = med(r, (x) => x.acceptRate.start);
        const b = med(r, (x) => x.acceptRate.end);
        return `${f0(a)} / ${f0(b)} per s (${a && b ? (b / a).toFixed(2) : '–'})`;
      },
      '≥ 0.8',
    ),
    row(
      'gateway CPU per accepted upload at 10 % / 100 %' + (result.mode === 'distributed' ? ' (api process)' : ''),
      (r) => {
        const end = med(r, (x) => x.cpuPerUploadMs.end);
        const ratio = reference && end ? ` (${(end / reference).toFixed(2)} × at 2,000)` : '';
        return `${f1(med(r, (x) => x.cpuPerUploadMs.start))} / ${f1(end)} ms${ratio}`;
      },
      '≤ 1.3 × at 2,000',
    ),
    ...(result.mode === 'distributed'
      ? [
          row(
            'redis-server CPU per accepted upload at 10 % / 100 %',
            (r) =>
              `${f1(med(r, (x) => x.redisCpuPerUploadMs?.start))} / ${f1(med(r, (x) => x.redisCpuPerUploadMs?.end))} ms`,
            '(reported)',
          ),
        ]
      : []),
    row(
      '`GET /v1/jobs?limit=50` p50 (body)',
      (r) =>
        `${f1(med(r, (x) => x.jobsPage?.p50Ms))} ms (${f1((med(r, (x) => x.jobsPage?.bytes) ?? NaN) / 1e6)} MB)` +
        runsOf(r, (x) => x.jobsPage?.p50Ms),
      '≤ 50 ms',
    ),
    row(
      '`GET /v1/jobs?pbxCallId=` p50 (jobs answered)',
      (r) =>
        `${f1(med(r, (x) => x.search?.p50Ms))} ms (${[...new Set(r.flatMap((x) => x.search?.hits ?? []))].join(', ')})`,
      '≤ 10 ms',
    ),
    row('`/metrics` p50', (r) => `${f1(med(r, (x) => x.metrics?.p50Ms))} ms`, '≤ 10 ms'),
    row(
      'RSS with the backlog full' + (result.mode === 'distributed' ? ' (api / worker / redis)' : ''),
      (r) =>
        result.mode === 'distributed'
          ? `${f0(med(r, (x) => x.rssMb?.front))} / ${f0(med(r, (x) => x.rssMb?.worker))} / ${f0(med(r, (x) => x.rssMb?.redis))} MB`
          : `${f0(med(r, (x) => x.rssMb?.front))} MB`,
      '≤ 300 MB',
    ),
    ...(result.mode === 'spool'
      ? [
          row(
            'restart after `kill -9` until `/readyz` 200 (`/healthz`)',
            (r) =>
              `${f1((med(r, (x) => x.restart?.readyMs) ?? NaN) / 1000)} s (${f1((med(r, (x) => x.restart?.healthzMs) ?? NaN) / 1000)} s)` +
              runsOf(r, (x) => (x.restart ? x.restart.readyMs / 1000 : undefined), f1),
            '≤ 3 s',
          ),
        ]
      : []),
    row(
      'prepared during the outage (jobs `ready` when Imagicle returns)',
      (r) => {
        const held = med(r, (x) => x.holdSeconds);
        const after = held !== undefined ? ` (Imagicle kept down ${f0(held)} s more)` : '';
        return `${f0(med(r, (x) => x.statesAtReturn?.ready))} of ${int(med(r, (x) => x.accepted) ?? 0)}${after}`;
      },
      'all (pure delivery)',
    ),
    row(
      `drain rate (vs ${int(baselineN)} queued: ${f1(base)} per s)`,
      (r) => {
        const rate = med(r, (x) => x.drain.rate);
        return (
          `${f1(rate)} per s (${rate && base ? (rate / base).toFixed(2) : '–'})` + runsOf(r, (x) => x.drain.rate, f1)
        );
      },
      '≥ 0.9',
    ),
    row(
      'delivered after Imagicle returns (time to 50 % / 90 % / all)',
      (r) => {
        const capped = r.some((x) => x.drain.capped);
        const delivered = med(r, (x) => x.drain.delivered) ?? 0;
        const all = med(r, (x) => x.accepted) ?? 0;
        const times = `${f0(med(r, (x) => x.drain.t50))} / ${f0(med(r, (x) => x.drain.t90))} / ${capped ? '–' : f0(med(r, (x) => x.drain.seconds))} s`;
        return capped
          ? `${int(delivered)} of ${int(all)} within ${capMin} min (${times})`
          : `${int(delivered)} (${times})`;
      },
      'all',
    ),
    row(
      'drain CPU per delivery: ' + (result.mode === 'distributed' ? 'worker' : 'gateway') + ' + its ffmpeg',
      (r) => `${f1(med(r, (x) => x.drain.cpuPerDeliveryMs))} + ${f1(med(r, (x) => x.drain.childCpuPerDeliveryMs))} ms`,
      '(reported)',
    ),
    row(
      'each once: duplicates / lost / unexpected (all runs)',
      (r) => {
        const sum = (pick: (x: RunResult) => number): number => r.reduce((t, x) => t + pick(x), 0);
        // A run stopped by the drain cap has not lost what it had not delivered yet.
        const lost = sum((x) => (x.drain.capped ? 0 : x.exact.missing));
        const pending = sum((x) => (x.drain.capped ? x.exact.missing : 0));
        const note = pending > 0 ? ` (${int(pending)} not delivered by the cap)` : '';
        return `${sum((x) => x.exact.duplicates)} / ${lost} / ${sum((x) => x.exact.unexpected)}${note}`;
      },
      '0 / 0 / 0',
    ),
    row(
      'load average (1 min) at start / backlog full / end',
      (r) =>
        r.map((x) => [x.load.start, x.load.backlogFull, x.load.end].map((l) => l.split(' ')[0]).join(' / ')).join('; '),
      '',
    ),
  ];
  return [header, rule, ...rows].join('\n');
}

// ---------------------------------------------------------------- the case

const marks = (mode: string): [string, string] => [
  `<!-- bench:outage:${mode}:start -->`,
  `<!-- bench:outage:${mode}:end -->`,
];

/** Replaces this mode's block in docs/benchmarks.md (or adds it at the end, under the notes written by hand). */
async function writeDoc(
  root: string,
  result: ModeResult,
  reference: number | undefined,
  started: Date,
  audioBytes: number,
  label: string | undefined,
): Promise<void> {
  const cpu = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  const [start, end] = marks(result.mode);
  const runs = result.sizes[0]?.runs.length ?? 0;
  const block = `${start}
${result.mode === 'spool' ? 'Spool' : 'Distributed mode'}${label ? ` (${label})` : ''}, last \`BENCH_ONLY=outage npm run bench\`: ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC,
${os.availableParallelism()} × ${cpu}, Node ${process.version}, ${runs === 1 ? 'one run per size' : `medians of ${runs} runs`},
${CLIENTS} clients, 1.5 s stereo Opus calls (${audioBytes} bytes) with \`Prefer: respond-async\`, Imagicle (the emulator)
answering 503 until the drain. Accept rate and CPU at 10 % / 100 %: over the 5 % of the backlog before that point
(CPU: utime + stime of the process, /proc/<pid>/stat). Latencies: p50 of ${SAMPLES} sequential requests, body read.
Drain rate: recordings in the emulator ÷ seconds from Imagicle's return to the last one (or to the
${result.drainCapMin ?? 8}-minute cap); its reference is the same gateway with ${int(result.baseline[0]?.n ?? BASELINE_N)} queued, in the same run.

${table(result, reference)}
${end}`;
  const file = path.join(root, 'docs', 'benchmarks.md');
  const doc = existsSync(file) ? await readFile(file, 'utf8') : '# Benchmarks\n\n## Notes\n';
  const a = doc.indexOf(start);
  const b = doc.indexOf(end);
  const heading = '### Issue 21: a weekend outage (`BENCH_ONLY=outage`)';
  const next =
    a >= 0 && b > a
      ? `${doc.slice(0, a)}${block}${doc.slice(b + end.length)}`
      : doc.includes(heading)
        ? `${doc.trimEnd()}\n\n${block}\n`
        : `${doc.trimEnd()}\n\n${heading}\n\n${block}\n`;
  await writeFile(file, next);
}

export async function benchOutage(opts: { work: string; main: string; root: string }): Promise<void> {
  if (process.env.BENCH_OUTAGE_REPORT) return report(opts.root, path.resolve(process.env.BENCH_OUTAGE_REPORT));
  const audioFile = path.join(opts.work, 'outage-call-1.5s.opus');
  if (!existsSync(audioFile)) {
    await run('ffmpeg', [
      ...['-v', 'error', '-f', 'lavfi', '-i', 'sine=f=330:r=48000:d=1.5'],
      ...['-f', 'lavfi', '-i', 'anoisesrc=r=48000:a=0.05:d=1.5:seed=21'],
      ...['-filter_complex', '[0][1]amerge=inputs=2', '-c:a', 'libopus', '-b:a', '32k', '-y', audioFile],
    ]);
  }
  const audio = await readFile(audioFile);
  const main = MAIN_OVERRIDE ? path.resolve(MAIN_OVERRIDE) : opts.main;
  if (!existsSync(main)) throw new Error(`BENCH_OUTAGE_MAIN: ${main} does not exist`);
  const started = new Date();
  const results: ModeResult[] = [];
  const json = path.join(opts.work, `outage-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  const save = (): Promise<void> =>
    writeFile(json, `${JSON.stringify({ started, label: LABEL, main, results }, null, 2)}\n`);
  for (const mode of MODES) {
    if (mode !== 'spool' && mode !== 'distributed') throw new Error(`BENCH_OUTAGE_MODES: unknown mode ${mode}`);
    const sizes = mode === 'spool' ? SIZES : [Math.max(...SIZES)];
    const result: ModeResult = {
      mode,
      drainCapMin: DRAIN_CAP_MS / 60_000,
      baseline: [],
      sizes: sizes.map((n) => ({ n, runs: [] })),
    };
    results.push(result);
    for (let i = 0; i < REPEATS; i++) {
      result.baseline.push(await outageRun(mode, BASELINE_N, audio, main, true));
      await save();
      for (const size of result.sizes) {
        size.runs.push(await outageRun(mode, size.n, audio, main, false));
        await save();
      }
    }
  }
  const spool = results.find((r) => r.mode === 'spool');
  const reference = med(spool?.sizes.find((s) => s.n === 2000)?.runs ?? [], (r) => r.cpuPerUploadMs.end);
  for (const result of results) await writeDoc(opts.root, result, reference, started, audio.length, LABEL);
  process.stdout.write(`\n${results.map((r) => table(r, reference)).join('\n\n')}\n\nall figures: ${json}\n`);
}

/** BENCH_OUTAGE_REPORT=bench/work/outage-….json: the tables of a saved run (complete or not) written again. */
async function report(root: string, file: string): Promise<void> {
  const saved = JSON.parse(await readFile(file, 'utf8')) as { started: string; label?: string; results: ModeResult[] };
  const spool = saved.results.find((r) => r.mode === 'spool');
  const reference = med(spool?.sizes.find((s) => s.n === 2000)?.runs ?? [], (r) => r.cpuPerUploadMs.end);
  const audioBytes = (await readFile(path.join(path.dirname(file), 'outage-call-1.5s.opus'))).length;
  for (const result of saved.results) {
    await writeDoc(root, result, reference, new Date(saved.started), audioBytes, saved.label);
  }
  process.stdout.write(`${saved.results.map((r) => table(r, reference)).join('\n\n')}\n`);
}
