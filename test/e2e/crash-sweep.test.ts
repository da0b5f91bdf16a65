/**
 * Crash leftovers are swept: `kill -9` on the real CLI during an upload and
 * during a transcode leaves job-* folders in TMP_DIR; the next start removes
 * them and logs how many, so TMP_DIR is empty again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { recordingForm, SAMPLE_METADATA } from '../helpers/gateway.js';
import { childrenOf, waitFor, writeLongG729 } from '../helpers/hostile.js';

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

let dir: string;
let tmpDir: string;
let longInput: string;
const children: ChildProcess[] = [];
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'crash-sweep-'));
  tmpDir = path.join(dir, 'tmp');
  longInput = await writeLongG729(path.join(dir, 'two-hours.g729'), 7200);
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
});

async function startChild(): Promise<{ child: ChildProcess; url: string; logs: string[] }> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve'], {
    env: {
      PATH: process.env.PATH,
      PORT: '0',
      HOST: '127.0.0.1',
      EMULATOR_PORT: '0',
      TMP_DIR: tmpDir,
      EMULATOR_DIR: path.join(dir, 'emulator'),
      SPOOL_DIR: path.join(dir, 'spool'),
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const logs: string[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    let buffered = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        logs.push(line);
        const entry = (() => {
          try {
            return JSON.parse(line) as { msg?: string; url?: string };
          } catch {
            return {};
          }
        })();
        if (entry.msg === 'gateway listening' && entry.url) resolve(entry.url);
      }
    });
    child.stderr!.on('data', (c: Buffer) => logs.push(c.toString()));
    child.once('exit', (code) => {
      reject(new Error(`gateway exited with ${code} before listening:\n${logs.join('\n')}`));
    });
  });
  return { child, url, logs };
}

/** Starts an upload that sends its head and 200 kB of the attachment, then stalls (the connection stays open). */
function stalledUpload(url: string): http.ClientRequest {
  const boundary = 'crash-sweep-boundary';
  const head =
    `--${boundary}\r\nContent-Disposition: form-data; name="jsondata"\r\n` +
    `Content-Type: application/json\r\n\r\n${JSON.stringify(SAMPLE_METADATA)}\r\n` +
    `--${boundary}\r\nContent-Disposition: form-data; name="attachment"; filename="call.wav"\r\n` +
    'Content-Type: audio/wav\r\n\r\n';
  const req = http.request(`${url}/v1/recordings`, {
    method: 'POST',
    headers: {
      'content-type': `multipart/form-data; boundary=${boundary}`,
      'content-length': String(head.length + 10_000_000),
    },
  });
  req.on('error', () => undefined);
  req.write(head);
  req.write(Buffer.alloc(200_000, 1));
  return req;
}

const jobFolders = async (): Promise<string[]> =>
  (await readdir(tmpDir).catch(() => [] as string[])).filter((n) => n.startsWith('job-'));

describe('kill -9, then a restart', () => {
  it('leaves TMP_DIR empty: the orphan folders of an upload and a transcode are removed and counted', async () => {
    const first = await startChild();
    const upload = stalledUpload(first.url);
    // The upload is being stored: its folder holds part of the attachment.
    expect(
      await waitFor(async () => {
        for (const folder of await jobFolders()) {
          const size = await stat(path.join(tmpDir, folder, 'in-attachment')).then(
            (s) => s.size,
            () => 0,
          );
          if (size > 0) return true;
        }
        return false;
      }, 20_000),
    ).toBe(true);
    const form = await recordingForm(longInput);
    const transcode = fetch(`${first.url}/v1/transcode`, { method: 'POST', body: form }).catch(() => undefined);
    let ffmpegPids: number[] = [];
    expect(
      await waitFor(async () => {
        ffmpegPids = (await childrenOf(first.child.pid!)).filter((c) => c.argv.includes('-progress')).map((c) => c.pid);
        return ffmpegPids.length > 0;
      }, 20_000),
    ).toBe(true);
    expect((await jobFolders()).length).toBe(2);

    // A hard crash: the gateway and its ffmpeg die at once, nothing is cleaned up.
    first.child.kill('SIGKILL');
    for (const pid of ffmpegPids) process.kill(pid, 'SIGKILL');
    await new Promise((resolve) => first.child.once('exit', resolve));
    upload.destroy();
    await transcode;
    expect((await jobFolders()).length).toBe(2);

    const second = await startChild();
    try {
      const entries = second.logs.map((l) => JSON.parse(l) as { msg?: string; removed?: number });
      const swept = entries.find((e) => e.msg === 'swept orphan work folders');
      expect(swept?.removed).toBe(2);
      expect(await readdir(tmpDir)).toEqual([]);
      expect((await fetch(`${second.url}/healthz`)).status).toBe(200);
    } finally {
      second.child.kill('SIGTERM');
      await new Promise((resolve) => second.child.once('exit', resolve));
    }
  }, 60_000);
});
