/**
 * Finding #14: in the distributed mode an upload whose declared Content-Length cannot fit in BLOB_DIR is refused
 * at once (507), before its body is read, instead of after writing it all to TMP_DIR.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { mkdir, readdir, statfs } from 'node:fs/promises';
import path from 'node:path';
import { RECORDINGS_PATH } from '../../src/imagicle/client.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { redisUnavailable, TestRedis } from '../helpers/redis.js';

const skip = redisUnavailable();
let redis: TestRedis;
let t: TestGateway;
let blobDir: string;

describe.skipIf(skip !== undefined)('distributed upload larger than BLOB_DIR can hold', () => {
  beforeAll(async () => {
    redis = await TestRedis.start();
    blobDir = path.join(redis.dir, 'blob');
    await mkdir(blobDir, { recursive: true });
    t = await startTestGateway({
      QUEUE_URL: redis.url,
      BLOB_DIR: blobDir,
      ROLE: 'api',
      DEDUP_WINDOW: '0',
      // No upload size limit in the way: the shared folder's room is what refuses it.
      MAX_UPLOAD_BYTES: String(Number.MAX_SAFE_INTEGER),
    });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await redis?.stop();
  });

  it('#14 is answered 507 from its Content-Length, before the body is read', async () => {
    const fs = await statfs(blobDir);
    const free = fs.bavail * fs.bsize;
    const declared = free + 1024 ** 3;
    const url = new URL(`${t.url}${RECORDINGS_PATH}`);
    const boundary = 'b0undary';
    const sent = Date.now();
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          headers: {
            'content-type': `multipart/form-data; boundary=${boundary}`,
            'content-length': String(declared),
          },
        },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      // A first slice of the body only; the rest never comes.
      req.write(`--${boundary}\r\nContent-Disposition: form-data; name="attachment"; filename="a.wav"\r\n\r\n`);
      req.write(Buffer.alloc(64 * 1024));
    });
    console.log(`#14: ${answer.status} after ${Date.now() - sent} ms for a declared ${declared} bytes`);
    expect(answer.status).toBe(507);
    expect((JSON.parse(answer.body) as { reason: number }).reason).toBe(0);
    expect(await t.settledTempEntries()).toEqual([]);
    expect(await readdir(path.join(blobDir, 'jobs')).catch(() => [])).toEqual([]);
  }, 30_000);
});
