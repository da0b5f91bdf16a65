/**
 * What the gateway answers between binding its port and being ready to work (ffmpeg checked, the spool loaded,
 * the worker started): `/healthz` says the process is alive at once, `/readyz` and every other route answer 503
 * with Retry-After. A restart over a large spool is then "starting", not a refused connection (issue 21).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Reason } from '../errors.js';

export function startingHandler(startedAt: number = Date.now()) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const route = (req.url ?? '/').split('?')[0];
    const healthy = route === '/healthz';
    const body = healthy
      ? { status: 'ok', starting: true, uptimeSeconds: Math.round((Date.now() - startedAt) / 1000) }
      : route === '/readyz'
        ? { status: 'starting' }
        : { reason: Reason.InvalidData, message: 'The gateway is starting (loading its spool); retry in a moment' };
    res.writeHead(healthy ? 200 : 503, {
      'Content-Type': 'application/json; charset=utf-8',
      'Cache-Control': 'no-store',
      ...(healthy ? {} : { 'Retry-After': '1' }),
      // Whatever the client sent is left unread: the connection is not kept for another request.
      Connection: 'close',
    });
    res.end(req.method === 'HEAD' ? undefined : JSON.stringify(body));
  };
}
