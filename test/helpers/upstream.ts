/**
 * A stand-in for Imagicle that records what it receives (headers, body size)
 * and answers 201 with an id, or whatever `respond` says; over HTTP or HTTPS.
 * Also: a throw-away private CA and server certificate for 127.0.0.1 (openssl).
 */
import http from 'node:http';
import https from 'node:https';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  bodyBytes: number;
  body: Buffer;
}

export interface FakeUpstream {
  url: string;
  requests: ReceivedRequest[];
  close(): Promise<void>;
}

export type Respond = (req: ReceivedRequest, res: http.ServerResponse) => void;

const created: Respond = (_req, res) => {
  res
    .writeHead(201, { 'content-type': 'application/json' })
    .end(JSON.stringify(`rec-${Math.random().toString(36).slice(2, 8)}`));
};

export async function startFakeUpstream(
  options: { tls?: { key: string; cert: string }; respond?: Respond } = {},
): Promise<FakeUpstream> {
  const requests: ReceivedRequest[] = [];
  const respond = options.respond ?? created;
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const received = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        bodyBytes: body.length,
        body,
      };
      requests.push(received);
      respond(received, res);
    });
  };
  const server = options.tls
    ? https.createServer({ key: options.tls.key, cert: options.tls.cert }, handler)
    : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface TestCertificate {
  dir: string;
  caFile: string;
  key: string;
  cert: string;
  cleanup(): Promise<void>;
}

/** A private CA and a certificate it signed for IP 127.0.0.1. */
export async function makeCertificate(): Promise<TestCertificate> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gw-tls-'));
  const f = (name: string): string => path.join(dir, name);
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=Test Private CA',
  ]);
  await run('openssl', [
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    f('server.key'),
    '-out',
    f('server.csr'),
    '-subj',
    '/CN=127.0.0.1',
  ]);
  await writeFile(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    f('server.csr'),
    '-CA',
    f('ca.pem'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-out',
    f('server.pem'),
    '-days',
    '2',
    '-extfile',
    f('ext.cnf'),
  ]);
  return {
    dir,
    caFile: f('ca.pem'),
    key: await readFile(f('server.key'), 'utf8'),
    cert: await readFile(f('server.pem'), 'utf8'),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
