/**
 * npm run soak -- --minutes N [--concurrency C] [--gateway-concurrency G] [--sample-seconds S] [--delivery wait|sync] [--json FILE]
 *
 * Starts the emulator and the gateway as two processes on loopback (from the
 * sources, with tsx), then keeps C clients busy for N minutes with a mix of
 * good uploads, bad ones (metadata, not audio, hostile playlists, malformed
 * multipart, no credentials, stalled) and aborted ones (mid-upload,
 * mid-transcode). Every S seconds it samples the gateway process: RSS, open
 * file descriptors (/proc/<pid>/fd), child processes, entries in its temp
 * folder and in its spool. At the end it waits for the gateway to go idle and
 * fails (exit 1) when something grew without bound:
 *   - temp folder entries or child processes left once idle;
 *   - open descriptors once idle above the first idle sample + 16;
 *   - RSS in the last quarter of the run above the second quarter's by 20 % and 32 MB
 *     (a steady climb, not the noise of the garbage collector);
 *   - the gateway died, or an answer was not one the request's kind allows.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = path.join(ROOT, 'src', 'main.ts');
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'generated');
const RECORDINGS_PATH = '/fw/Apps/Recorder/WebAPI/Recordings';
const API_KEY = 'soak-key-0123456789abcdef';

interface Options {
  minutes: number;
  concurrency: number;
  gatewayConcurrency: number;
  sampleSeconds: number;
  delivery: 'wait' | 'sync';
  json: string | undefined;
}

function parseArgs(argv: string[]): Options {
  const value = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const num = (name: string, fallback: number): number => {
    const v = value(name);
    const n = v === undefined ? fallback : Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number`);
    return n;
  };
  return {
    minutes: num('minutes', 1),
    concurrency: Math.round(num('concurrency', 8)),
    gatewayConcurrency: Math.round(num('gateway-concurrency', os.availableParallelism())),
    sampleSeconds: num('sample-seconds', 10),
    delivery: value('delivery') === 'sync' ? 'sync' : 'wait',
    json: value('json'),
  };
}

// ---------------------------------------------------------------- processes

interface Service {
  child: ChildProcess;
  url: string;
  exited: boolean;
  stderr: string[];
}

const services = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of services) child.kill('SIGKILL');
});

async function startService(args: string[], env: Record<string, string>, marker: string): Promise<Service> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  services.add(child);
  const service: Service = { child, url: '', exited: false, stderr: [] };
  child.once('exit', () => {
    service.exited = true;
  });
  child.stderr!.on('data', (c: Buffer) => {
    service.stderr.push(c.toString());
    if (service.stderr.length > 50) service.stderr.shift();
  });
  service.url = await new Promise<string>((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new Error(`${args[0]} did not start in 60 s`)), 60_000);
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (!line.includes(marker)) continue;
        try {
          const entry = JSON.parse(line) as { url?: string };
          if (entry.url) {
            clearTimeout(timer);
            resolve(entry.url);
          }
        } catch {
          // not JSON
        }
      }
      if (buffer.length > 1 << 20) buffer = '';
    });
    child.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code}: ${service.stderr.join('')}`)));
  });
  return service;
}

async function stop(service: Service): Promise<void> {
  if (service.exited) return;
  const exited = new Promise<void>((resolve) => service.child.once('exit', () => resolve()));
  service.child.kill('SIGTERM');
  const timer = setTimeout(() => service.child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}

// ---------------------------------------------------------------- sampling

interface Sample {
  atSeconds: number;
  rssMb: number;
  fds: number;
  children: number;
  childNames: string[];
  tempEntries: number;
  spoolJobs: number;
  requests: number;
}

async function childrenOf(pid: number): Promise<string[]> {
  try {
    const { stdout } = await run('pgrep', ['-l', '-P', String(pid)]);
    return stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(/\s+/)[1] ?? '?');
  } catch {
    return [];
  }
}

async function sample(
  pid: number,
  dirs: { tmp: string; spool: string },
  started: number,
  requests: number,
): Promise<Sample> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const fds = (await readdir(`/proc/${pid}/fd`)).length;
  const childNames = await childrenOf(pid);
  const tempEntries = (await readdir(dirs.tmp).catch(() => [])).length;
  const spoolJobs = (await readdir(path.join(dirs.spool, 'jobs')).catch(() => [])).length;
  return {
    atSeconds: Math.round((performance.now() - started) / 1000),
    rssMb: Math.round(rssKb / 102.4) / 10,
    fds,
    children: childNames.length,
    childNames,
    tempEntries,
    spoolJobs,
    requests,
  };
}

// ---------------------------------------------------------------- traffic

type Kind =
  | 'good'
  | 'bad-metadata'
  | 'not-audio'
  | 'hostile-playlist'
  | 'malformed'
  | 'no-credentials'
  | 'stalled'
  | 'abort-upload'
  | 'abort-transcode';

/** Answers each kind may get; 503 (overload) is always allowed and counted apart. */
const EXPECTED: Record<Kind, number[]> = {
  good: [201, 202],
  'bad-metadata': [400],
  'not-audio': [400],
  'hostile-playlist': [400],
  malformed: [400],
  'no-credentials': [401],
  stalled: [408],
  'abort-upload': [0],
  'abort-transcode': [0],
};

const WEIGHTS: Array<[Kind, number]> = [
  ['good', 40],
  ['bad-metadata', 8],
  ['not-audio', 8],
  ['hostile-playlist', 8],
  ['malformed', 8],
  ['no-credentials', 6],
  ['stalled', 2],
  ['abort-upload', 10],
  ['abort-transcode', 10],
];

const GOOD_FILES = [
  'pcm16-mono.wav',
  'alaw-mono.wav',
  'mp3-mono.mp3',
  'opus-stereo.opus',
  'raw.gsm',
  'flac.flac',
  'aac.m4a',
  'pcm16-size-zero.wav',
  'amr-nb.amr',
  'webm-opus.webm',
];

/** A small deterministic PRNG, so that two runs send the same mix. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let callCounter = 0;
function metadata(): string {
  callCounter += 1;
  return JSON.stringify({
    startDateTime: new Date(Date.UTC(2026, 0, 1) + callCounter * 1000).toISOString(),
    direction: 1,
    localParty: { username: 'soak', phoneNumber: '100' },
    remoteParty: { phoneNumber: '200' },
    pbxCallId: `soak-${process.pid}-${callCounter}`,
  });
}

function form(json: string, file: Buffer, filename: string): FormData {
  const f = new FormData();
  f.append('jsondata', new Blob([json], { type: 'application/json' }));
  f.append('attachment', new Blob([file]), filename);
  return f;
}

interface Inputs {
  good: Array<{ name: string; bytes: Buffer }>;
  notAudio: Array<{ name: string; bytes: Buffer }>;
  hostile: Array<{ name: string; bytes: Buffer }>;
  long: Buffer;
}

async function loadInputs(): Promise<Inputs> {
  if (!existsSync(path.join(FIXTURES, '.complete'))) {
    process.stdout.write('generating the test fixtures...\n');
    await run('bash', [path.join(ROOT, 'test', 'fixtures', 'make-fixtures.sh'), FIXTURES], { maxBuffer: 8 << 20 });
  }
  const read = async (name: string) => ({ name, bytes: await readFile(path.join(FIXTURES, name)) });
  const g729 = await readFile(path.join(FIXTURES, 'raw.g729'));
  const playlist = (target: string): Buffer =>
    Buffer.from(`#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\n${target}\n#EXT-X-ENDLIST\n`);
  return {
    good: await Promise.all(GOOD_FILES.map(read)),
    notAudio: await Promise.all(['not-audio.txt', 'image.png', 'empty.wav', 'garbage.mp3', 'video-only.mp4'].map(read)),
    hostile: [
      { name: 'list.m3u8', bytes: playlist('file:///etc/passwd') },
      { name: 'call.mp3', bytes: playlist('http://127.0.0.1:9/x.ts') },
      { name: 'call.wav', bytes: Buffer.from("ffconcat version 1.0\nfile '/etc/passwd'\n") },
    ],
    // Five minutes of G.729: ffmpeg runs long enough to be interrupted.
    long: Buffer.concat(Array.from({ length: 150 }, () => g729)),
  };
}

async function rawExchange(url: string, bytes: Buffer, cutAfterMs: number | undefined): Promise<number> {
  const u = new URL(url);
  return new Promise<number>((resolve) => {
    const socket = net.connect(Number(u.port), u.hostname);
    let data = '';
    socket.on('data', (c: Buffer) => {
      data += c.toString('latin1');
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0)));
    socket.write(bytes);
    if (cutAfterMs !== undefined) setTimeout(() => socket.destroy(), cutAfterMs);
    setTimeout(() => socket.destroy(), 60_000).unref();
  });
}

async function send(kind: Kind, gw: string, inputs: Inputs, random: () => number): Promise<number> {
  const pick = <T>(list: T[]): T => list[Math.floor(random() * list.length)]!;
  const headers = { 'x-api-key': API_KEY };
  const post = async (
    body: FormData,
    extra: Record<string, string> = headers,
    signal?: AbortSignal,
  ): Promise<number> => {
    const res = await fetch(`${gw}${RECORDINGS_PATH}`, {
      method: 'POST',
      body,
      headers: extra,
      ...(signal ? { signal } : {}),
    });
    await res.arrayBuffer();
    return res.status;
  };
  switch (kind) {
    case 'good': {
      const f = pick(inputs.good);
      return post(form(metadata(), f.bytes, f.name));
    }
    case 'bad-metadata': {
      const f = inputs.good[0]!;
      return post(form(JSON.stringify({ direction: 7, startDateTime: 'yesterday' }), f.bytes, f.name));
    }
    case 'not-audio': {
      const f = pick(inputs.notAudio);
      return post(form(metadata(), f.bytes, f.name));
    }
    case 'hostile-playlist': {
      const f = pick(inputs.hostile);
      return post(form(metadata(), f.bytes, f.name));
    }
    case 'malformed': {
      const body = Buffer.from(
        `--b\r\nContent-Disposition: form-data; name="jsondata"\r\n\r\n${metadata()}\r\n--b\r\nContent-Disposition: form-data; name="attachment"; filename="a.wav"\r\n\r\nRIFF`,
      );
      const head = `POST ${RECORDINGS_PATH} HTTP/1.1\r\nHost: x\r\nX-Api-Key: ${API_KEY}\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: ${body.length}\r\n\r\n`;
      return rawExchange(gw, Buffer.concat([Buffer.from(head), body]), undefined);
    }
    case 'no-credentials': {
      const f = inputs.good[0]!;
      return post(form(metadata(), f.bytes, f.name), {});
    }
    case 'stalled': {
      const body = Buffer.from(
        `--b\r\nContent-Disposition: form-data; name="jsondata"\r\n\r\n${metadata()}\r\n--b\r\nContent-Disposition: form-data; name="attachment"; filename="a.wav"\r\n\r\nRIFF`,
      );
      const head = `POST ${RECORDINGS_PATH} HTTP/1.1\r\nHost: x\r\nX-Api-Key: ${API_KEY}\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: ${body.length + 100_000}\r\n\r\n`;
      return rawExchange(gw, Buffer.concat([Buffer.from(head), body]), undefined);
    }
    case 'abort-upload': {
      const body = Buffer.concat([
        Buffer.from(
          `--b\r\nContent-Disposition: form-data; name="jsondata"\r\n\r\n${metadata()}\r\n--b\r\nContent-Disposition: form-data; name="attachment"; filename="a.wav"\r\n\r\n`,
        ),
        inputs.long.subarray(0, 200_000),
      ]);
      const head = `POST ${RECORDINGS_PATH} HTTP/1.1\r\nHost: x\r\nX-Api-Key: ${API_KEY}\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: ${body.length + 5_000_000}\r\n\r\n`;
      return rawExchange(gw, Buffer.concat([Buffer.from(head), body]), 50 + Math.floor(random() * 200));
    }
    case 'abort-transcode': {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), 300 + Math.floor(random() * 700));
      try {
        return await post(form(metadata(), inputs.long, 'long.g729'), headers, controller.signal);
      } catch {
        return 0;
      } finally {
        clearTimeout(timer);
      }
    }
  }
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const work = await mkdtemp(path.join(os.tmpdir(), 'imagicle-soak-'));
  const dirs = { tmp: path.join(work, 'tmp'), spool: path.join(work, 'spool'), emulator: path.join(work, 'emulator') };
  const inputs = await loadInputs();
  process.stdout.write(
    `soak: ${options.minutes} min, ${options.concurrency} clients, gateway CONCURRENCY=${options.gatewayConcurrency}, DELIVERY=${options.delivery}, samples every ${options.sampleSeconds} s, work in ${work}\n`,
  );

  const emulator = await startService(
    ['emulator', '--port', '0', '--dir', dirs.emulator],
    { LOG_LEVEL: 'info' },
    'Imagicle emulator listening',
  );
  const gateway = await startService(
    ['serve'],
    {
      PORT: '0',
      HOST: '127.0.0.1',
      IMAGICLE_URL: emulator.url,
      GATEWAY_API_KEYS: API_KEY,
      TMP_DIR: dirs.tmp,
      SPOOL_DIR: dirs.spool,
      CONCURRENCY: String(options.gatewayConcurrency),
      QUEUE_LIMIT: '32',
      UPLOAD_IDLE_TIMEOUT_MS: '2000',
      DELIVERY: options.delivery,
      LOG_LEVEL: 'info',
    },
    'gateway listening',
  );
  const pid = gateway.child.pid!;
  const random = prng(20261129);
  const counts = new Map<string, number>();
  const unexpected: string[] = [];
  let requests = 0;
  let overloaded = 0;
  const started = performance.now();
  const deadline = started + options.minutes * 60_000;
  const samples: Sample[] = [await sample(pid, dirs, started, 0)];

  const total = WEIGHTS.reduce((s, [, w]) => s + w, 0);
  const chooseKind = (): Kind => {
    let r = random() * total;
    for (const [kind, w] of WEIGHTS) {
      r -= w;
      if (r < 0) return kind;
    }
    return 'good';
  };

  const client = async (): Promise<void> => {
    while (performance.now() < deadline && !gateway.exited) {
      const kind = chooseKind();
      let status: number;
      try {
        status = await send(kind, gateway.url, inputs, random);
      } catch (error) {
        status = kind.startsWith('abort') ? 0 : -1;
        if (status === -1) unexpected.push(`${kind}: ${error instanceof Error ? error.message : String(error)}`);
      }
      requests += 1;
      counts.set(`${kind} ${status}`, (counts.get(`${kind} ${status}`) ?? 0) + 1);
      if (status === 503) overloaded += 1;
      else if (status !== -1 && !EXPECTED[kind].includes(status)) unexpected.push(`${kind}: ${status}`);
    }
  };

  const sampler = setInterval(() => {
    void sample(pid, dirs, started, requests)
      .then((s) => {
        samples.push(s);
        process.stdout.write(
          `t=${s.atSeconds}s rss=${s.rssMb}MB fds=${s.fds} children=${s.children} temp=${s.tempEntries} spool=${s.spoolJobs} requests=${s.requests}\n`,
        );
        // Keep the emulator's disk use flat; it is not what is being measured.
        void fetch(`${emulator.url}/emulator/recordings`, { method: 'DELETE' }).catch(() => undefined);
      })
      .catch(() => undefined);
  }, options.sampleSeconds * 1000);

  await Promise.all(Array.from({ length: options.concurrency }, () => client()));
  clearInterval(sampler);

  // Idle: in-flight and background work finish, temp folders go.
  const idleDeadline = performance.now() + 120_000;
  let idle = await sample(pid, dirs, started, requests);
  // Spool journals of delivered jobs are kept for duplicate detection (SPOOL_MAX_AGE): reported, not awaited.
  while (performance.now() < idleDeadline && (idle.children > 0 || idle.tempEntries > 0)) {
    await new Promise((r) => setTimeout(r, 1000));
    idle = await sample(pid, dirs, started, requests);
  }
  samples.push(idle);
  const alive = !gateway.exited;
  await stop(gateway);
  await stop(emulator);

  // Verdict.
  const first = samples[0]!;
  const quarter = (from: number, to: number): number => {
    const part = samples.slice(
      Math.floor(samples.length * from),
      Math.max(Math.floor(samples.length * from) + 1, Math.floor(samples.length * to)),
    );
    return part.reduce((s, x) => s + x.rssMb, 0) / part.length;
  };
  const rssMid = quarter(0.25, 0.5);
  const rssEnd = quarter(0.75, 1);
  const failures: string[] = [];
  if (!alive) failures.push(`the gateway died: ${gateway.stderr.join('').slice(-2000)}`);
  if (idle.tempEntries > 0) failures.push(`${idle.tempEntries} temp folder entries left once idle`);
  if (idle.children > 0)
    failures.push(`${idle.children} child processes left once idle (${idle.childNames.join(', ')})`);
  if (idle.fds > first.fds + 16) failures.push(`open descriptors grew from ${first.fds} to ${idle.fds}`);
  if (rssEnd > rssMid * 1.2 && rssEnd - rssMid > 32)
    failures.push(`RSS grew from ${rssMid.toFixed(1)} MB to ${rssEnd.toFixed(1)} MB`);
  if (unexpected.length > 0)
    failures.push(`${unexpected.length} unexpected answers, e.g. ${[...new Set(unexpected)].slice(0, 5).join('; ')}`);

  const maxChildren = Math.max(...samples.map((s) => s.children));
  const summary = {
    options,
    requests,
    overloaded,
    perMinute: Math.round(requests / options.minutes),
    answers: Object.fromEntries([...counts.entries()].sort()),
    start: first,
    end: idle,
    peak: {
      rssMb: Math.max(...samples.map((s) => s.rssMb)),
      fds: Math.max(...samples.map((s) => s.fds)),
      children: maxChildren,
      tempEntries: Math.max(...samples.map((s) => s.tempEntries)),
      spoolJobs: Math.max(...samples.map((s) => s.spoolJobs)),
    },
    rssSecondQuarterMb: Math.round(rssMid * 10) / 10,
    rssLastQuarterMb: Math.round(rssEnd * 10) / 10,
    samples,
    failures,
  };
  process.stdout.write(
    [
      '',
      `requests: ${requests} (${summary.perMinute}/min), 503 overload: ${overloaded}`,
      'answers (kind status: count):',
      ...Object.entries(summary.answers).map(([k, v]) => `  ${k}: ${v}`),
      '',
      '| | RSS MB | open fds | children | temp entries | spool jobs |',
      '|---|---|---|---|---|---|',
      `| start | ${first.rssMb} | ${first.fds} | ${first.children} | ${first.tempEntries} | ${first.spoolJobs} |`,
      `| peak | ${summary.peak.rssMb} | ${summary.peak.fds} | ${summary.peak.children} | ${summary.peak.tempEntries} | ${summary.peak.spoolJobs} |`,
      `| end (idle) | ${idle.rssMb} | ${idle.fds} | ${idle.children} | ${idle.tempEntries} | ${idle.spoolJobs} |`,
      `RSS, mean of 2nd quarter ${summary.rssSecondQuarterMb} MB, of last quarter ${summary.rssLastQuarterMb} MB`,
      failures.length === 0
        ? 'PASS: nothing grew without bound'
        : `FAIL:\n${failures.map((f) => `  - ${f}`).join('\n')}`,
      '',
    ].join('\n'),
  );
  if (options.json) await writeFile(options.json, `${JSON.stringify(summary, null, 2)}\n`);
  await rm(work, { recursive: true, force: true });
  process.exit(failures.length === 0 ? 0 : 1);
}

main().catch((error: unknown) => {
  process.stderr.write(`soak failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
