/**
 * METRICS_PORT: /metrics and /healthz on a listener of their own, for a scraper that sends no credentials. It is
 * bound to 127.0.0.1 by default (METRICS_HOST to change it: a pod's address for a sidecar scraper, say), so the
 * numbers of every tenant are not on the port the callers reach. Nothing else is served there. Any process can
 * start one over its registry (the gateway; a ROLE=worker process, which serves no API).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../logger.js';

/** What the listener exposes: a Prometheus registry's text (prom-client's Registry, or GatewayMetrics). */
interface MetricsSource {
  contentType(): string;
  expose(): Promise<string>;
}

export interface MetricsServerOptions {
  port: number;
  host: string;
  metrics: MetricsSource;
  logger?: Logger | undefined;
}

export interface RunningMetricsServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startMetricsServer(options: MetricsServerOptions): Promise<RunningMetricsServer> {
  const { metrics, logger } = options;
  const started = Date.now();
  const server = http.createServer((req, res) => {
    const route = (req.url ?? '/').split('?')[0];
    const answer = (status: number, type: string, body: string): void => {
      res.writeHead(status, {
        'Content-Type': type,
        'Content-Length': Buffer.byteLength(body),
        'X-Content-Type-Options': 'nosniff',
        'Cache-Control': 'no-store',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      answer(405, 'application/json', JSON.stringify({ reason: 0, message: 'Method not allowed' }));
      return;
    }
    if (route === '/healthz') {
      const body = { status: 'ok', uptimeSeconds: Math.round((Date.now() - started) / 1000) };
      answer(200, 'application/json', JSON.stringify(body));
      return;
    }
    if (route === '/metrics') {
      metrics.expose().then(
        (text) => answer(200, metrics.contentType(), text),
        (error: unknown) => {
          logger?.error({ err: error }, 'metrics: exposition failed');
          answer(500, 'application/json', JSON.stringify({ reason: 0, message: 'Metrics unavailable' }));
        },
      );
      return;
    }
    answer(404, 'application/json', JSON.stringify({ reason: 0, message: 'Not found' }));
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host === '0.0.0.0' || options.host === '::' ? '127.0.0.1' : options.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger?.info({ url }, 'metrics listening (no credentials: keep it off public networks)');
  return {
    url,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
