/**
 * Answers an upload with an injected fault instead of importing it:
 * a reset after N body bytes, a reset after the whole body, or a status.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createByteTap } from './byte-tap.js';
import type { Fault } from './faults.js';
import { canRespond, drain, sendJson, sleep } from './respond.js';

function defaultBody(status: number): unknown {
  if (status >= 400) return { reason: 0, message: `Injected fault: HTTP ${status}` };
  if (status === 201) return randomUUID(); // looks like an id, but nothing was stored
  return undefined;
}

async function resetAfter(req: IncomingMessage, limit: number): Promise<void> {
  if (limit > 0) {
    await drain(
      req,
      createByteTap((total) => {
        if (total >= limit) req.socket.destroy();
      }),
    );
  }
  req.socket.destroy(); // also when the body was shorter than the limit
}

function answerStatus(res: ServerResponse, fault: Fault & { status: number }): void {
  if (!canRespond(res)) return;
  const headers: Record<string, string> =
    fault.retryAfter === undefined ? {} : { 'Retry-After': String(fault.retryAfter) };
  const body = fault.body === undefined ? defaultBody(fault.status) : fault.body;
  if (typeof body === 'string' && fault.contentType !== undefined) {
    res.writeHead(fault.status, {
      ...headers,
      'Content-Type': fault.contentType,
      'Content-Length': Buffer.byteLength(body),
    });
    res.end(body);
  } else if (body === undefined) {
    res.writeHead(fault.status, headers);
    res.end();
  } else {
    sendJson(res, fault.status, body, headers);
  }
}

export async function answerWithFault(req: IncomingMessage, res: ServerResponse, fault: Fault): Promise<void> {
  if (fault.resetAfterBodyBytes !== undefined) {
    await resetAfter(req, fault.resetAfterBodyBytes);
    return;
  }
  await drain(req);
  if (fault.delayMs) await sleep(fault.delayMs);
  if (fault.reset === true || fault.status === undefined) {
    req.socket.destroy();
    return;
  }
  answerStatus(res, { ...fault, status: fault.status });
}
