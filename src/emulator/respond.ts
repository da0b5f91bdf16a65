/**
 * Small helpers for answering upload requests safely: the client may be gone.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { GatewayError } from '../errors.js';

/** False once headers went out or the connection is gone. */
export function canRespond(res: ServerResponse): boolean {
  return !res.headersSent && !res.destroyed && res.socket !== null && !res.socket.destroyed;
}

export function sendError(res: ServerResponse, error: GatewayError): void {
  if (!canRespond(res)) return;
  const body = JSON.stringify(error.toBody());
  res.writeHead(error.status, {
    ...error.headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  if (!canRespond(res)) return;
  const body = JSON.stringify(value);
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** Reads and discards the request body (through `tap` when given); never throws. */
export async function drain(req: IncomingMessage, tap?: Transform): Promise<void> {
  const sink = new Writable({
    write(_chunk, _encoding, callback) {
      callback();
    },
  });
  try {
    await (tap ? pipeline(req, tap, sink) : pipeline(req, sink));
  } catch {
    // The client went away or the socket was reset on purpose: nothing to read any more.
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
