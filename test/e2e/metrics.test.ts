/**
 * GET /metrics: access control, a registry per gateway, and numbers that move
 * as uploads happen (parsed with a real Prometheus text parser). Also the
 * request id of an upload: echoed, and on every log line with its job id.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { openAsBlob } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fixture } from '../helpers/fixtures.js';
import { recordingForm, SAMPLE_METADATA, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { histogram, parseExposition, sample, type Exposition } from '../helpers/prometheus.js';
import { RECORDINGS_PATH } from '../../src/imagicle/client.js';

const run = promisify(execFile);
const KEY = 'metrics-test-key-0123456789abcdef';
const AUTH = { authorization: `Bearer ${KEY}` };
const P = 'imagicle_gateway_';

let dir: string;
let t: TestGateway;
let open: TestGateway;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'metrics-'));
  // 5 s of 8 kHz 16-bit mono: about 80 kB, two parts at MAX_PART_BYTES=64 KiB.
  await run('ffmpeg', [
    '-v',
    'error',
    '-f',
    'lavfi',
    '-i',
    'sine=f=300:r=8000:d=5',
    '-c:a',
    'pcm_s16le',
    '-y',
    path.join(dir, 'five.wav'),
  ]);
  await writeFile(
    path.join(dir, 'noise.wav'),
    Buffer.from('this is not audio at all, just text pretending to be a WAV file\n'.repeat(40)),
  );
  const common = {
    RETRY_MAX_ATTEMPTS: '3',
    RETRY_MIN_DELAY_MS: '20',
    RETRY_MAX_DELAY_MS: '50',
    SPOOL_RETRY_MAX_DELAY_MS: '100',
    MAX_PART_BYTES: '65536',
    // The old rules for unknown outcomes (held, counted): with Imagicle's reads they are asked about instead.
    RECONCILE: 'off',
  };
  [t, open] = await Promise.all([
    startTestGateway({ ...common, GATEWAY_ADMIN_KEYS: KEY, DEDUP_WINDOW: '1h' }),
    startTestGateway({ ...common, METRICS_PUBLIC: 'true', GATEWAY_ADMIN_KEYS: KEY, MAX_DURATION_SECONDS: '3' }),
  ]);
});
afterAll(async () => {
  await Promise.all([t?.close(), open?.close()]);
  await rm(dir, { recursive: true, force: true });
});

async function scrape(g: TestGateway, headers: Record<string, string> = AUTH): Promise<Exposition> {
  const res = await fetch(`${g.url}/metrics`, { headers });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

const native = async (file: string, pbxCallId: string, headers: Record<string, string> = {}) =>
  fetch(`${t.url}/v1/recordings`, {
    method: 'POST',
    body: await recordingForm(file, { ...SAMPLE_METADATA, pbxCallId }),
    headers: { ...AUTH, ...headers },
  });

describe('GET /metrics', () => {
  it('asks for the same credentials as /v1, unless METRICS_PUBLIC=true', async () => {
    const anonymous = await fetch(`${t.url}/metrics`);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toEqual({ reason: 0, message: expect.stringContaining('Authentication required') });
    expect((await fetch(`${t.url}/metrics`, { headers: { 'x-api-key': KEY } })).status).toBe(200);
    const exposition = await scrape(open, {});
    // Default Node metrics are there, with the gateway's own.
    expect(sample(exposition, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(sample(exposition, 'nodejs_heap_size_total_bytes')).toBeGreaterThan(0);
    expect(sample(exposition, `${P}conversions`, { state: 'running' })).toBe(0);
  });

  it('counts an upload: endpoint, decision, outcome, codec, stage times, bytes, audio seconds, upstream', async () => {
    const file = fixture('pcm16-mono.wav');
    const before = await scrape(t);
    const res = await native(file, 'metrics-1');
    expect(res.status).toBe(201);
    const report = (await res.json()) as { output: { durationSeconds: number }; upstream: { status: number } };
    const after = await scrape(t);
    const delta = (name: string, labels: Record<string, string> = {}): number =>
      sample(after, name, labels) - sample(before, name, labels);
    expect(delta(`${P}uploads_total`, { endpoint: 'native', decision: 'pass-through', outcome: 'delivered' })).toBe(1);
    expect(delta(`${P}input_codecs_total`, { codec: 'pcm_s16le' })).toBe(1);
    expect(delta(`${P}upstream_responses_total`, { status: String(report.upstream.status) })).toBe(1);
    for (const stage of ['receive', 'probe', 'render', 'deliver']) {
      expect(
        histogram(after, `${P}stage_duration_seconds`, { stage }).count -
          histogram(before, `${P}stage_duration_seconds`, { stage }).count,
      ).toBe(1);
    }
    const bytes = histogram(after, `${P}upload_bytes`).sum - histogram(before, `${P}upload_bytes`).sum;
    expect(bytes).toBe((await stat(file)).size);
    const seconds =
      histogram(after, `${P}recording_audio_seconds`).sum - histogram(before, `${P}recording_audio_seconds`).sum;
    expect(seconds).toBeCloseTo(report.output.durationSeconds, 6);
    expect(
      histogram(after, `${P}upstream_request_duration_seconds`).count -
        histogram(before, `${P}upstream_request_duration_seconds`).count,
    ).toBe(1);
    // The other gateway in this process counted nothing of it.
    expect(sample(await scrape(open, {}), `${P}uploads_total`)).toBe(0);
  });

  it('counts duplicates, refused inputs and split parts', async () => {
    const before = await scrape(t);
    expect((await native(fixture('pcm16-mono.wav'), 'metrics-1')).status).toBe(200);
    const refused = await native(path.join(dir, 'noise.wav'), 'metrics-2');
    expect(refused.status).toBe(400);
    const split = await native(path.join(dir, 'five.wav'), 'metrics-3');
    expect(split.status).toBe(201);
    const parts = ((await split.json()) as { parts: unknown[] }).parts.length;
    // Two legs merged into stereo: the decision is "merge".
    const legs = await recordingForm(fixture('pcm16-mono.wav'), { ...SAMPLE_METADATA, pbxCallId: 'metrics-4' });
    legs.append('remoteAttachment', await openAsBlob(fixture('alaw-mono.wav')), 'remote.wav');
    expect((await fetch(`${t.url}/v1/recordings`, { method: 'POST', body: legs, headers: AUTH })).status).toBe(201);
    expect(parts).toBeGreaterThanOrEqual(2);
    const after = await scrape(t);
    const delta = (name: string, labels: Record<string, string> = {}): number =>
      sample(after, name, labels) - sample(before, name, labels);
    expect(delta(`${P}duplicates_suppressed_total`)).toBe(1);
    expect(delta(`${P}uploads_total`, { endpoint: 'native', outcome: 'duplicate' })).toBe(1);
    expect(delta(`${P}inputs_refused_total`, { code: 'BAD_AUDIO', reason: 'not_audio' })).toBe(1);
    expect(delta(`${P}uploads_total`, { endpoint: 'native', decision: 'none', outcome: 'refused' })).toBe(1);
    expect(delta(`${P}split_parts_total`)).toBe(parts);
    expect(delta(`${P}uploads_total`, { endpoint: 'native', decision: 'merge', outcome: 'delivered' })).toBe(1);
  });

  it('shows retries, a held job in the spool gauges and the age of the oldest undelivered job', async () => {
    const before = await scrape(t);
    await t.emulator.faults.add([
      { status: 503, retryAfter: 0 },
      { status: 500, body: { reason: 0, message: 'boom' } },
    ]);
    const res = await fetch(`${t.url}${RECORDINGS_PATH}`, {
      method: 'POST',
      body: await recordingForm(fixture('pcm16-mono.wav'), { ...SAMPLE_METADATA, pbxCallId: 'metrics-held' }),
      headers: AUTH,
    });
    // 503, retried; then 500: ambiguous, held (RETRY_AMBIGUOUS=false) and answered as Imagicle did.
    expect(res.status).toBe(500);
    await new Promise((r) => setTimeout(r, 20));
    const after = await scrape(t);
    const delta = (name: string, labels: Record<string, string> = {}): number =>
      sample(after, name, labels) - sample(before, name, labels);
    expect(delta(`${P}delivery_retries_total`)).toBe(1);
    expect(delta(`${P}upstream_responses_total`, { status: '503' })).toBe(1);
    expect(delta(`${P}upstream_responses_total`, { status: '500' })).toBe(1);
    expect(delta(`${P}uploads_total`, { endpoint: 'drop-in', outcome: 'held' })).toBe(1);
    expect(sample(after, `${P}spool_jobs`, { state: 'failed' })).toBe(1);
    expect(sample(after, `${P}spool_bytes`)).toBeGreaterThan(0);
    expect(sample(after, `${P}oldest_undelivered_job_age_seconds`)).toBeGreaterThan(0);
  });
});

describe('metrics an operator can read', () => {
  const post = async (g: TestGateway, file: string, pbxCallId: string): Promise<number> =>
    (
      await fetch(`${g.url}/v1/recordings`, {
        method: 'POST',
        body: await recordingForm(file, { ...SAMPLE_METADATA, pbxCallId }),
        headers: AUTH,
      })
    ).status;

  it('counts refused inputs by their precise reason, not all as BAD_AUDIO', async () => {
    await writeFile(path.join(dir, 'empty.wav'), Buffer.alloc(0));
    const before = await scrape(open, {});
    expect(await post(open, path.join(dir, 'empty.wav'), 'r-1')).toBe(400);
    expect(await post(open, path.join(dir, 'noise.wav'), 'r-2')).toBe(400);
    expect(await post(open, path.join(dir, 'five.wav'), 'r-3')).toBe(400); // 5 s > MAX_DURATION_SECONDS=3
    const after = await scrape(open, {});
    const delta = (labels: Record<string, string>): number =>
      sample(after, `${P}inputs_refused_total`, labels) - sample(before, `${P}inputs_refused_total`, labels);
    expect(delta({ code: 'BAD_AUDIO', reason: 'empty' })).toBe(1);
    expect(delta({ code: 'BAD_AUDIO', reason: 'not_audio' })).toBe(1);
    expect(delta({ code: 'BAD_AUDIO', reason: 'too_long' })).toBe(1);
  });

  it('has histogram buckets up to the configured limits, build_info and upstream_up', async () => {
    expect(await post(open, fixture('pcm16-mono.wav'), 'b-1')).toBe(201);
    expect(await post(t, fixture('pcm16-mono.wav'), 'b-2')).toBe(201);
    const text = await (await fetch(`${open.url}/metrics`)).text();
    // FFMPEG_TIMEOUT_MS (1 h), IMAGICLE_TIMEOUT_MS (120 s), MAX_DURATION_SECONDS (3 here).
    expect(text).toMatch(/^imagicle_gateway_stage_duration_seconds_bucket\{le="3600",stage="receive"\} /m);
    expect(text).toMatch(/^imagicle_gateway_upstream_request_duration_seconds_bucket\{le="120"\} /m);
    expect(text).toMatch(/^imagicle_gateway_recording_audio_seconds_bucket\{le="3"\} /m);
    expect(text).not.toMatch(/^imagicle_gateway_recording_audio_seconds_bucket\{le="5"\} /m);
    const defaults = await (await fetch(`${t.url}/metrics`, { headers: AUTH })).text();
    expect(defaults).toMatch(/^imagicle_gateway_recording_audio_seconds_bucket\{le="43200"\} /m);

    const { version } = JSON.parse(await (await import('node:fs/promises')).readFile('package.json', 'utf8')) as {
      version: string;
    };
    const exposition = parseExposition(text);
    const info = exposition.series.find((f) => f.name === `${P}build_info`)!.metrics[0]!;
    expect(info.value).toBe('1');
    expect(info.labels).toEqual({ version, ffmpeg: expect.stringMatching(/^\S+$/) });
    expect(sample(exposition, `${P}upstream_up`)).toBe(1);
  });

  it('keeps status for HTTP codes only: an attempt with no answer is counted apart', async () => {
    const before = await scrape(open, {});
    open.emulator.faults.add({ reset: true, count: 5 });
    try {
      await post(open, fixture('pcm16-mono.wav'), 'r-reset');
    } finally {
      open.emulator.faults.clear();
    }
    const after = await scrape(open, {});
    expect(sample(after, `${P}upstream_errors_total`) - sample(before, `${P}upstream_errors_total`)).toBeGreaterThan(0);
    const statuses = after.series
      .filter((f) => f.name === `${P}upstream_responses_total`)
      .flatMap((f) => f.metrics.map((m) => m.labels?.status));
    for (const status of statuses) expect(status).toMatch(/^\d{3}$/);
  });
});

describe('request ids', () => {
  it('keeps a sane X-Request-Id, replaces an insane one, names request and job on every upload log line', async () => {
    const kept = await native(fixture('pcm16-mono.wav'), 'rid-1', { 'x-request-id': 'pbx-42.call:7' });
    expect(kept.status).toBe(201);
    expect(kept.headers.get('x-request-id')).toBe('pbx-42.call:7');
    const { jobId } = (await kept.json()) as { jobId: string };
    const lines = t.logs
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.requestId === 'pbx-42.call:7');
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['job spooled', 'upload processed']));
    for (const line of lines) expect(line.jobId).toBe(jobId);
    const replaced = await native(fixture('pcm16-mono.wav'), 'rid-2', { 'x-request-id': 'no spaces allowed\there' });
    expect(replaced.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});
