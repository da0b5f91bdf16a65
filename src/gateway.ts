/**
 * Assembles and starts the gateway: tools check, upstream (real or the
 * embedded emulator), the HTTP server with its timeouts, and a graceful close.
 * Used by the CLI's `serve` and by the end-to-end tests.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import { checkTools, resolveBinaries, type FfmpegBinaries } from './media/ffmpeg.js';
import { UpstreamClient } from './imagicle/client.js';
import { createApp } from './http/app.js';
import { startEmulator, type RunningEmulator } from './emulator/index.js';

export interface RunningGateway {
  url: string;
  port: number;
  server: http.Server;
  bins: FfmpegBinaries;
  upstreamUrl: string;
  emulator: RunningEmulator | undefined;
  close(): Promise<void>;
}

export class StartupError extends Error {}

export async function startGateway(config: Config, logger: Logger): Promise<RunningGateway> {
  const bins = resolveBinaries({ ffmpegPath: config.ffmpegPath, ffprobePath: config.ffprobePath });
  const tools = await checkTools(bins);
  if (!tools.ok) throw new StartupError(`ffmpeg is not usable: ${tools.problems.join('; ')}`);
  logger.info({ ffmpeg: tools.ffmpegVersion, ffprobe: tools.ffprobeVersion }, 'ffmpeg ready');

  let emulator: RunningEmulator | undefined;
  let upstreamBase = config.imagicleUrl;
  if (!upstreamBase) {
    emulator = await startEmulator({
      port: config.emulatorPort,
      host: '127.0.0.1',
      storageDir: config.emulatorDir,
      logger: logger.child({ component: 'emulator' }),
    });
    upstreamBase = emulator.url;
    logger.warn(
      { emulator: emulator.url, storage: config.emulatorDir },
      `NO IMAGICLE_URL SET: recordings go to the EMBEDDED IMAGICLE EMULATOR at ${emulator.url} (list them at ${emulator.url}/emulator/recordings). Set IMAGICLE_URL to deliver to a real server.`,
    );
  }

  const upstream = new UpstreamClient({
    baseUrl: upstreamBase,
    credentials: config.imagicleCredentials,
    timeoutMs: config.upstreamTimeoutMs,
  });
  const app = createApp({ config, bins, upstream, logger });
  const server = http.createServer(app);
  // Slow or stalled uploads: a whole upload may take long, but not forever, and headers must come quickly.
  server.headersTimeout = 30_000;
  server.requestTimeout = 0;
  server.timeout = 120_000;
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger.info({ url, upstream: upstream.url }, 'gateway listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        const timer = setTimeout(() => {
          server.closeAllConnections();
        }, config.shutdownGraceMs);
        timer.unref();
      });
      await upstream.close();
      await emulator?.close();
    })();
    return closing;
  };
  return { url, port, server, bins, upstreamUrl: upstream.url, emulator, close };
}
