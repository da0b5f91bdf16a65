/**
 * ffmpeg containment: files that make a permissive ffmpeg open other files or
 * URLs are refused with 400 reason 2, with no outbound connection (a listener
 * counts them), nothing forwarded to Imagicle and nothing left behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { recordingForm, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import {
  countingListener,
  ffconcatScript,
  gab2Avi,
  hlsPlaylist,
  listTree,
  type CountingListener,
} from '../helpers/hostile.js';
import { RECORDINGS_PATH } from '../../src/imagicle/client.js';
import { argsFor, legTarget } from '../../src/media/render-job.js';
import { inputOptions } from '../../src/media/ffmpeg-run.js';
import { AUTODETECT_DEMUXERS, RAW_HINTS } from '../../src/media/formats.js';

const run = promisify(execFile);

/** HARDENING_REPORT=1 prints what each hostile input got and how long it took (for docs/security.md). */
const rows: string[] = [];
function report(input: string, status: number, body: string, started: number): void {
  rows.push(`| ${input} | ${status} ${body.replace(/\|/g, '\\|')} | ${Math.round(performance.now() - started)} ms |`);
}

let t: TestGateway;
let listener: CountingListener;
let dir: string;
const files: Record<string, string> = {};

beforeAll(async () => {
  [t, listener] = await Promise.all([startTestGateway(), countingListener()]);
  dir = await mkdtemp(path.join(os.tmpdir(), 'hostile-'));
  const http = `http://127.0.0.1:${listener.port}/segment.ts`;
  const contents: Record<string, string | Buffer> = {
    'hls-http.m3u8': hlsPlaylist(http),
    'hls-http-disguised.mp3': hlsPlaylist(http),
    'hls-passwd.m3u8': hlsPlaylist('file:///etc/passwd'),
    'hls-passwd-disguised.mp3': hlsPlaylist('file:///etc/passwd'),
    'script.ffconcat': ffconcatScript('/etc/passwd', http),
    'script-disguised.wav': ffconcatScript('/etc/passwd', http),
    'gab2-http.avi': gab2Avi(hlsPlaylist(http)),
    'gab2-passwd-disguised.wav': gab2Avi(hlsPlaylist('file:///etc/passwd')),
  };
  for (const [name, content] of Object.entries(contents)) {
    files[name] = path.join(dir, name);
    await writeFile(files[name], content);
  }
});
afterAll(async () => {
  if (process.env.HARDENING_REPORT) process.stdout.write(`${rows.join('\n')}\n`);
  await Promise.all([t?.close(), listener?.close()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the hostile files are potent', () => {
  it('a permissive ffprobe follows the playlist to the listener (so zero below means something)', async () => {
    const before = listener.connections();
    await run('ffprobe', [
      '-v',
      'error',
      '-protocol_whitelist',
      'file,http,tcp',
      '-show_format',
      files['hls-http-disguised.mp3']!,
    ]).catch(() => undefined);
    expect(listener.connections()).toBeGreaterThan(before);
  });
});

describe('refused with 400 reason 2, no connection, nothing forwarded, nothing left', () => {
  const cases: Array<[string, RegExp]> = [
    ['hls-http.m3u8', /hls.*playlist or script/i],
    ['hls-http-disguised.mp3', /hls.*playlist or script/i],
    ['hls-passwd.m3u8', /hls.*playlist or script/i],
    ['hls-passwd-disguised.mp3', /hls.*playlist or script/i],
    ['script.ffconcat', /concat.*playlist or script/i],
    ['script-disguised.wav', /concat.*playlist or script/i],
    ['gab2-http.avi', /avi.*playlist or script/i],
    ['gab2-passwd-disguised.wav', /avi.*playlist or script/i],
  ];
  it.each(cases)('%s', async (name, message) => {
    const connections = listener.connections();
    const requests = t.emulator.stats.snapshot().requests;
    for (const endpoint of [RECORDINGS_PATH, '/v1/recordings', '/v1/transcode']) {
      const started = performance.now();
      const res = await fetch(`${t.url}${endpoint}`, { method: 'POST', body: await recordingForm(files[name]!) });
      const text = await res.text();
      report(`${name} → ${endpoint}`, res.status, text, started);
      expect(res.status, text).toBe(400);
      const body = JSON.parse(text) as { reason: number; message: string };
      expect(body).toEqual({ reason: 2, message: expect.stringMatching(message) as unknown as string });
      expect(text).not.toContain('root:');
      expect(text).not.toContain(t.tmpDir);
    }
    expect(listener.connections()).toBe(connections);
    expect(t.emulator.stats.snapshot().requests).toBe(requests);
    expect(await t.tempEntries()).toEqual([]);
  });

  it('no local file content reached the emulator', async () => {
    for (const file of await listTree(t.emulator.store.dir)) {
      const content = await readFile(path.join(t.emulator.store.dir, file)).catch(() => Buffer.alloc(0));
      expect(content.includes('root:x:0:0')).toBe(false);
    }
  });
});

describe('argv', () => {
  it('every input is opened with the file protocol only and an explicit list of demuxers', () => {
    expect(inputOptions(undefined)).toEqual([
      '-protocol_whitelist',
      'file',
      '-format_whitelist',
      AUTODETECT_DEMUXERS.join(','),
    ]);
    for (const hint of Object.values(RAW_HINTS)) {
      const opts = inputOptions(hint);
      expect(opts.slice(0, 4)).toEqual(['-protocol_whitelist', 'file', '-format_whitelist', hint.demuxer]);
    }
    for (const referencing of [
      'hls',
      'applehttp',
      'concat',
      'dash',
      'image2',
      'lavfi',
      'avi',
      'sdp',
      'rtsp',
      'tee',
      'data',
      'subfile',
    ]) {
      expect(AUTODETECT_DEMUXERS as readonly string[]).not.toContain(referencing);
    }
  });

  it('a transcode maps the first audio stream only, never -safe 0, paths behind file:', () => {
    const args = argsFor({
      kind: 'transcode',
      input: { path: '/tmp/job/in-attachment', hint: undefined },
      target: legTarget(8000),
      output: { path: '/tmp/job/out.wav', maxDurationSeconds: 60, maxOutputBytes: 1e6 },
    });
    const joined = args.join(' ');
    expect(joined).toContain('-map 0:a:0 -vn -sn -dn');
    expect(args).not.toContain('-safe');
    expect(args).toContain('file:/tmp/job/in-attachment');
    expect(args.at(-1)).toBe('file:/tmp/job/out.wav');
  });
});
