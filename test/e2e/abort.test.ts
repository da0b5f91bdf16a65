/**
 * A client that goes away, mid-upload or mid-transcode, leaves no temp file
 * and no child process behind; the running ffmpeg is contained (argv and
 * environment checked in /proc while it runs).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { recordingForm, SAMPLE_METADATA, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { childrenOf, listTree, part, postHead, rawRequest, waitFor, writeLongG729 } from '../helpers/hostile.js';
import { RECORDINGS_PATH } from '../../src/imagicle/client.js';
import { liveProcessCount } from '../../src/media/process.js';

let t: TestGateway;
let spooling: TestGateway;
let dir: string;
let longInput: string;
const MARKER = 'CLIENTNAME_7f3a';

beforeAll(async () => {
  // DELIVERY=sync: the job lives and dies with its request. (Under DELIVERY=wait a received upload is spooled
  // and finished in the background even if its client leaves: docs/delivery.md.)
  [t, spooling] = await Promise.all([startTestGateway({ DELIVERY: 'sync' }), startTestGateway({ DELIVERY: 'wait' })]);
  dir = await mkdtemp(path.join(os.tmpdir(), 'abort-'));
  longInput = await writeLongG729(path.join(dir, 'long.g729'), 7200);
});
afterAll(async () => {
  await Promise.all([t?.close(), spooling?.close()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

const nothingLeft = async (g: TestGateway = t): Promise<void> => {
  expect(await waitFor(async () => (await g.tempEntries()).length === 0 && liveProcessCount() === 0)).toBe(true);
  expect(await childrenOf(process.pid)).toEqual([]);
  // No job was spooled either (DELIVERY=wait keeps received uploads in SPOOL_DIR/jobs/<id>/).
  expect(await listTree(path.join(path.dirname(g.tmpDir), 'spool', 'jobs'))).toEqual([]);
};

describe.each([
  ['DELIVERY=sync', () => t],
  ['DELIVERY=wait', () => spooling],
])('client aborts mid-upload (%s)', (_mode, gateway) => {
  it('a connection cut in the middle of the attachment', async () => {
    const t = gateway();
    const boundary = 'b0undary';
    const body = Buffer.concat([
      part(
        boundary,
        ['Content-Disposition: form-data; name="jsondata"', 'Content-Type: application/json'],
        JSON.stringify(SAMPLE_METADATA),
      ),
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="attachment"; filename="a.wav"\r\n\r\n`),
      Buffer.alloc(256 * 1024, 7),
    ]);
    const res = await rawRequest(
      t.url,
      postHead(RECORDINGS_PATH, `multipart/form-data; boundary=${boundary}`, body.length + 10_000_000),
      body,
      {
        then: (socket) => {
          // Cut once the gateway has started storing the attachment.
          void waitFor(async () => (await listTree(t.tmpDir)).some((f) => f.endsWith('in-attachment'))).then(() =>
            socket.destroy(),
          );
        },
      },
    );
    expect(res.noAnswer).toBe(true);
    await nothingLeft(t);
  });

  it('fetch aborted while the body streams', async () => {
    const t = gateway();
    const controller = new AbortController();
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull: async (c) => {
        if (sent === 0) {
          c.enqueue(
            new TextEncoder().encode(
              `--x\r\nContent-Disposition: form-data; name="attachment"; filename="a.wav"\r\n\r\n`,
            ),
          );
        } else {
          await new Promise((r) => setTimeout(r, 5));
          c.enqueue(new Uint8Array(16 * 1024));
        }
        sent += 1;
        if (sent === 20) controller.abort();
      },
    });
    await expect(
      fetch(`${t.url}${RECORDINGS_PATH}`, {
        method: 'POST',
        body: stream,
        headers: { 'content-type': 'multipart/form-data; boundary=x' },
        signal: controller.signal,
        duplex: 'half',
      } as RequestInit),
    ).rejects.toThrow();
    await nothingLeft(t);
  });
});

describe('client aborts mid-transcode', () => {
  it('kills ffmpeg (contained argv, bare environment) and removes the job folder', async () => {
    const requests = t.emulator.stats.snapshot().requests;
    const controller = new AbortController();
    const pending = fetch(`${t.url}${RECORDINGS_PATH}`, {
      method: 'POST',
      body: await recordingForm(longInput, SAMPLE_METADATA, { filename: `${MARKER}$(id);../../x.g729` }),
      signal: controller.signal,
    }).catch((error: unknown) => error);

    // Wait for the transcode itself (not the probe): ffmpeg writing progress.
    let ffmpeg: Awaited<ReturnType<typeof childrenOf>>[number] | undefined;
    expect(
      await waitFor(async () => {
        ffmpeg = (await childrenOf(process.pid)).find((c) => c.argv.includes('-progress'));
        return ffmpeg !== undefined;
      }, 20_000),
    ).toBe(true);
    const argv = ffmpeg!.argv;
    expect(argv.join(' ')).toContain('-protocol_whitelist file -format_whitelist g729 -f g729');
    expect(argv.join(' ')).toContain('-map 0:a:0 -vn -sn -dn');
    expect(argv.join(' ')).not.toContain(MARKER);
    // Only paths the gateway made, in its own folders (temp or spool).
    const own = path.dirname(t.tmpDir);
    const paths = argv.filter((a) => a.startsWith('file:'));
    expect(paths.length).toBe(2);
    for (const p of paths) expect(p.startsWith(`file:${own}/`), p).toBe(true);
    expect(ffmpeg!.env.map((e) => e.split('=')[0]).sort()).toEqual(['LC_ALL', 'MALLOC_ARENA_MAX', 'PATH']);
    expect(liveProcessCount()).toBe(1);

    controller.abort();
    expect(await pending).toBeInstanceOf(Error);
    await nothingLeft();
    expect(t.emulator.stats.snapshot().requests).toBe(requests);
    // The abort is logged as such, not as a failure of the gateway.
    expect(t.logs.some((l) => l.includes('"level":50'))).toBe(false);
  });
});
