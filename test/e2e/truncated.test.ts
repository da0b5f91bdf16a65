/**
 * Finding #15: a recording cut short (a copy that stopped, a crashed recorder) is not delivered silently as a
 * shorter call. Where the container declares its length (WAV data size, FLAC total samples, Matroska and MP4
 * durations, an MP3 Xing header), what decodes is compared with it: the report and the log say `truncated` with
 * both lengths, and TRUNCATED=reject refuses it (400, reason 2). Complete files of the same formats are not flagged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { recordingForm, SAMPLE_METADATA, startTestGateway, type TestGateway } from '../helpers/gateway.js';

const run = promisify(execFile);
let dir: string;
let accept: TestGateway;
let reject: TestGateway;

/** 60 s of tone in each container, and its first fifth. */
const FORMATS: Array<{ name: string; args: string[] }> = [
  { name: 'call.wav', args: ['-ar', '8000', '-c:a', 'pcm_s16le'] },
  { name: 'call.flac', args: ['-ar', '8000', '-c:a', 'flac'] },
  { name: 'call.webm', args: ['-ar', '48000', '-c:a', 'libopus', '-b:a', '16k'] },
  { name: 'call.m4a', args: ['-ar', '16000', '-c:a', 'aac', '-b:a', '32k', '-movflags', '+faststart'] },
  { name: 'call.mp3', args: ['-ar', '16000', '-c:a', 'libmp3lame', '-q:a', '6'] },
];

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'truncated-'));
  for (const f of FORMATS) {
    const whole = path.join(dir, f.name);
    await run('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'sine=f=330:d=60', ...f.args, '-y', whole]);
    const bytes = await readFile(whole);
    await writeFile(path.join(dir, `cut-${f.name}`), bytes.subarray(0, Math.floor(bytes.length / 5)));
  }
  [accept, reject] = await Promise.all([
    startTestGateway({ DELIVERY: 'sync' }),
    startTestGateway({ DELIVERY: 'sync', TRUNCATED: 'reject' }),
  ]);
}, 60_000);
afterAll(async () => {
  await Promise.all([accept?.close(), reject?.close()]);
  await rm(dir, { recursive: true, force: true });
});

async function post(t: TestGateway, file: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${t.url}/v1/recordings`, {
    method: 'POST',
    body: await recordingForm(path.join(dir, file), SAMPLE_METADATA),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('#15 truncated recordings', () => {
  for (const f of FORMATS) {
    it(`${f.name}: the first fifth is reported truncated (accept) and refused (reject); the whole file is not`, async () => {
      const cut = await post(accept, `cut-${f.name}`);
      expect(cut.status).toBe(201);
      const truncated = cut.body.truncated as { declaredSeconds: number; decodedSeconds: number } | undefined;
      console.log(`#15 ${f.name} cut to a fifth: ${cut.status}, truncated: ${JSON.stringify(truncated)}`);
      expect(truncated).toBeDefined();
      expect(truncated!.declaredSeconds).toBeGreaterThan(59);
      expect(truncated!.decodedSeconds).toBeLessThan(20);
      expect(accept.logs.join('')).toMatch(/"truncated":\{"declaredSeconds"/);

      const refused = await post(reject, `cut-${f.name}`);
      expect(refused.status).toBe(400);
      expect(refused.body.reason).toBe(2);
      expect(String(refused.body.message)).toMatch(/truncated/);

      const whole = await post(reject, f.name);
      expect(whole.status).toBe(201);
      expect(whole.body.truncated).toBeUndefined();
    }, 60_000);
  }
});
