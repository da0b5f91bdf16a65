/**
 * Tools for the hardening tests: hostile files (playlists, scripts, an AVI
 * carrying a playlist), long inputs that keep ffmpeg busy, raw HTTP requests
 * (for bodies fetch cannot send), a listener that counts connections, bounded
 * waits, and a look at this process's children.
 */
import net from 'node:net';
import { execFile } from 'node:child_process';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { fixture } from './fixtures.js';

const run = promisify(execFile);

/** An HLS media playlist whose one segment is `target` (a URL or a path). */
export function hlsPlaylist(target: string): string {
  return `#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:10.0,\n${target}\n#EXT-X-ENDLIST\n`;
}

/** An ffconcat script naming a local file and a URL. */
export function ffconcatScript(file: string, url: string): string {
  return `ffconcat version 1.0\nfile '${file}'\nfile '${url}'\n`;
}

/**
 * An AVI whose only stream is a GAB2 subtitle carrying `payload` (a playlist):
 * the trick that made ffmpeg's avi demuxer open an embedded HLS playlist
 * (CVE-2017-9993 family). Same layout as the public proof of concept.
 */
export function gab2Avi(payload: string): Buffer {
  const header = Buffer.from(
    'RIFF\x00\x00\x00\x00AVI LIST\x14\x01\x00\x00hdrlavih8\x00\x00\x00@\x9c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00' +
      '\x10\x00\x00\x00}\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\xe0\x00\x00\x00\xa0\x00\x00\x00' +
      '\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00LISTt\x00\x00\x00strlstrh8\x00\x00\x00txts' +
      '\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x19\x00\x00\x00\x00\x00\x00\x00' +
      "}\x00\x00\x00\x86\x03\x00\x00\x10'\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xe0\x00\xa0\x00strf(\x00\x00\x00" +
      '(\x00\x00\x00\xe0\x00\x00\x00\xa0\x00\x00\x00\x01\x00\x18\x00XVID\x00H\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00' +
      '\x00\x00\x00\x00\x00\x00\x00\x00\x00LIST    movi',
    'latin1',
  );
  const content = Buffer.concat([
    Buffer.from('GAB2\x00\x02\x00', 'latin1'),
    Buffer.alloc(10),
    Buffer.from(payload, 'utf8'),
  ]);
  const size = Buffer.alloc(4);
  size.writeUInt32LE(content.length);
  const text = Buffer.concat([Buffer.from('00tx'), size, content]);
  const filler = Buffer.concat([Buffer.from('00dc'), Buffer.from([200, 0, 0, 0]), Buffer.alloc(200)]);
  return Buffer.concat([header, text, ...Array.from({ length: 50 }, () => filler)]);
}

/**
 * A long headerless G.729 file (the 2 s fixture repeated): small to upload,
 * slow to decode (about 20 s per hour of audio on a small machine), so ffmpeg
 * is reliably still running when a test acts.
 */
export async function writeLongG729(file: string, seconds: number): Promise<string> {
  const unit = await readFile(fixture('raw.g729'));
  await writeFile(file, Buffer.concat(Array.from({ length: Math.ceil(seconds / 2) }, () => unit)));
  return file;
}

/** A TCP listener on 127.0.0.1 that counts connections (and what they sent). */
export interface CountingListener {
  port: number;
  connections(): number;
  received(): string;
  close(): Promise<void>;
}

export async function countingListener(): Promise<CountingListener> {
  let count = 0;
  let data = '';
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    count += 1;
    sockets.add(socket);
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1');
    });
    socket.on('close', () => sockets.delete(socket));
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    connections: () => count,
    received: () => data,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The connection ended (or was reset) without any HTTP answer. */
  noAnswer: boolean;
}

/**
 * Sends bytes as they are on a fresh connection and reads the answer until
 * the server closes the connection or `timeoutMs` passes. `then` may keep
 * writing (slow drip) or stall.
 */
export async function rawRequest(
  url: string,
  head: string,
  body: Buffer | string = Buffer.alloc(0),
  options: { timeoutMs?: number; then?: (socket: net.Socket) => void } = {},
): Promise<RawResponse> {
  const u = new URL(url);
  const socket = net.connect(Number(u.port), u.hostname);
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((resolve) => {
    socket.once('close', () => resolve());
    socket.once('error', () => resolve());
  });
  socket.write(head);
  socket.write(body);
  options.then?.(socket);
  const timer = setTimeout(() => socket.destroy(), options.timeoutMs ?? 10_000);
  await ended;
  clearTimeout(timer);
  return parseResponse(Buffer.concat(chunks));
}

export function parseResponse(raw: Buffer): RawResponse {
  const text = raw.toString('utf8');
  const split = text.indexOf('\r\n\r\n');
  const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
  if (!m || split < 0) return { status: 0, headers: {}, body: text, noAnswer: true };
  const headers: Record<string, string> = {};
  for (const line of text.slice(0, split).split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = text.slice(split + 4);
  if (headers['transfer-encoding'] === 'chunked') body = unchunk(body);
  return { status: Number(m[1]), headers, body, noAnswer: false };
}

function unchunk(text: string): string {
  let out = '';
  let rest = text;
  for (;;) {
    const nl = rest.indexOf('\r\n');
    if (nl < 0) return out;
    const size = parseInt(rest.slice(0, nl), 16);
    if (!Number.isFinite(size) || size === 0) return out;
    out += rest.slice(nl + 2, nl + 2 + size);
    rest = rest.slice(nl + 2 + size + 2);
  }
}

/** The head of a POST with the given body length and content type. */
export function postHead(
  path: string,
  contentType: string | undefined,
  length: number | undefined,
  extra: Record<string, string> = {},
): string {
  const lines = [`POST ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
  if (contentType !== undefined) lines.push(`Content-Type: ${contentType}`);
  if (length !== undefined) lines.push(`Content-Length: ${length}`);
  for (const [k, v] of Object.entries(extra)) lines.push(`${k}: ${v}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** One multipart part, as raw bytes (the header lines are taken as they are). */
export function part(boundary: string, headers: string[], content: Buffer | string): Buffer {
  return Buffer.concat([
    Buffer.from(`--${boundary}\r\n${headers.join('\r\n')}\r\n\r\n`, 'latin1'),
    typeof content === 'string' ? Buffer.from(content, 'utf8') : content,
    Buffer.from('\r\n', 'latin1'),
  ]);
}

export const closing = (boundary: string): Buffer => Buffer.from(`--${boundary}--\r\n`, 'latin1');

/** Polls `check` until it is true or `timeoutMs` passes; returns the last result. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  everyMs = 25,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface ChildProcessInfo {
  pid: number;
  argv: string[];
  env: string[];
}

/** The live children of a process, with argv and environment from /proc. */
export async function childrenOf(pid: number): Promise<ChildProcessInfo[]> {
  let pids: number[] = [];
  try {
    const { stdout } = await run('pgrep', ['-P', String(pid)]);
    pids = stdout.split('\n').filter(Boolean).map(Number);
  } catch {
    return []; // pgrep exits 1 when there is none
  }
  const out: ChildProcessInfo[] = [];
  for (const child of pids) {
    try {
      const [cmdline, environ] = await Promise.all([
        readFile(`/proc/${child}/cmdline`),
        readFile(`/proc/${child}/environ`),
      ]);
      out.push({ pid: child, argv: split0(cmdline), env: split0(environ) });
    } catch {
      // Exited meanwhile.
    }
  }
  return out;
}

const split0 = (b: Buffer): string[] => b.toString('utf8').split('\0').filter(Boolean);

/** Processes whose command line mentions `needle` (e.g. a temp folder), any parent. */
export async function processesMentioning(needle: string): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const argv = split0(await readFile(`/proc/${entry}/cmdline`));
      if (argv.some((a) => a.includes(needle)) && !argv.some((a) => a === 'pgrep')) out.push(Number(entry));
    } catch {
      // gone
    }
  }
  return out;
}

/** Everything under a folder, recursively (file names only). */
export async function listTree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  return entries.map(String);
}
