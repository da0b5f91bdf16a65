/**
 * Assembles and starts the gateway: tools check, upstream (real or the
 * embedded emulator), the HTTP server with its timeouts, and a graceful close.
 * Used by the CLI's `serve` and by the end-to-end tests.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import { checkTools, resolveBinaries, type FfmpegBinaries } from './media/ffmpeg-tools.js';
import { configureChildLimits } from './media/process.js';
import { sweepOrphanWorkFolders } from './http/sweep.js';
import { UpstreamClient } from './imagicle/client.js';
import { createApp } from './http/app.js';
import { WatchedFolderBoard } from './watched-folder.js';
import { startEmulator, type RunningEmulator } from './emulator/server.js';
import { ProcessSlots } from './pipeline/process-slots.js';
import { Lifecycle } from './http/shutdown.js';
import { startMetricsServer, type RunningMetricsServer } from './http/metrics-server.js';
import { openSpool, startDelivery, type DeliveryTools } from './delivery/setup.js';
import type { DeliveryService } from './delivery/service.js';
import { GatewayMetrics } from './metrics.js';
import { setupWebhooks } from './webhooks/setup.js';
import type { WebhookService } from './webhooks/service.js';
import { VERSION } from './version.js';
import { startingHandler } from './http/starting.js';
import { mediaPolicyOf, type MediaSettings } from './media-policy.js';
import { reconcilerOf } from './reconciler.js';

export interface RunningGateway {
  url: string;
  port: number;
  server: http.Server;
  bins: FfmpegBinaries;
  upstreamUrl: string;
  /** The client every delivery uses (also the watched folder's, WATCH_DIR). */
  upstream: UpstreamClient;
  emulator: RunningEmulator | undefined;
  /** The ffmpeg/ffprobe process slots and their waiting line (CONCURRENCY, QUEUE_LIMIT). */
  processSlots: ProcessSlots;
  /** In-flight uploads. */
  lifecycle: Lifecycle;
  /** This gateway's Prometheus registry (GET /metrics). */
  metrics: GatewayMetrics;
  /** METRICS_PORT: the credential-free /metrics listener (http/metrics-server.ts); none when unset. */
  metricsServer: RunningMetricsServer | undefined;
  /** The spool and its worker (DELIVERY=wait); undefined under DELIVERY=sync. */
  delivery: DeliveryService | undefined;
  /** The webhook sink and its dispatcher (WEBHOOKS); undefined when none is configured. */
  webhooks: WebhookService | undefined;
  /** The media policy every job renders under (built once: media-policy.ts). */
  media: MediaSettings;
  /** WATCH_DIR under serve: its watcher attaches its state here, /readyz shows it (import/serve-watch.ts). */
  watchedFolder: WatchedFolderBoard;
  /** Stops taking uploads, lets in-flight ones finish within SHUTDOWN_GRACE_MS, aborts the rest, then closes. */
  close(): Promise<void>;
}

class StartupError extends Error {}

/** After the grace period: time for aborted uploads to kill their processes, clean up and answer. */
const ABORT_DRAIN_MS = 5_000;

export async function startGateway(config: Config, logger: Logger): Promise<RunningGateway> {
  // The port is bound first: /healthz answers while ffmpeg is checked and the spool loads (/readyz: 503 until then).
  const starting = startingHandler();
  const server = http.createServer(starting);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  try {
    return await buildGateway(config, logger, server, starting);
  } catch (error) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw error;
  }
}

async function buildGateway(
  config: Config,
  logger: Logger,
  server: http.Server,
  starting: ReturnType<typeof startingHandler>,
): Promise<RunningGateway> {
  const limits = configureChildLimits({ maxMemoryBytes: config.bounds.maxMemoryMb * 1024 * 1024 });
  if (limits.maxMemoryBytes > 0 && !limits.prlimitPath) {
    logger.warn('prlimit (util-linux) not found: ffmpeg and ffprobe run WITHOUT the FFMPEG_MAX_MEMORY_MB ceiling');
  }
  const bins = resolveBinaries({ ffmpegPath: config.ffmpegPath, ffprobePath: config.ffprobePath });
  // The spool loads (main thread) while ffmpeg and ffprobe answer their checks (child processes): issue 21's
  // restart to ready. Its journals are read, nothing is run until the worker starts (startDelivery).
  const checking = checkTools(bins);
  const opening = config.distributed ? undefined : openSpool(config, logger);
  // An open that fails while ffmpeg is checked is reported below, not as an unhandled rejection.
  opening?.catch(() => undefined);
  const tools = await checking;
  if (!tools.ok) {
    await opening?.then(({ spool }) => spool.close()).catch(() => undefined);
    const limited = limits.maxMemoryBytes > 0 && limits.prlimitPath;
    const ceiling = limited ? ` (it runs under FFMPEG_MAX_MEMORY_MB=${config.bounds.maxMemoryMb})` : '';
    throw new StartupError(`ffmpeg is not usable${ceiling}: ${tools.problems.join('; ')}`);
  }
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

  if (config.upstreamTls.insecure) {
    logger.warn(
      { upstream: upstreamBase },
      'IMAGICLE_TLS_INSECURE=true: the certificate of Imagicle is NOT verified; anyone on the path can read the recordings and the credentials',
    );
  }
  if (config.imagicleCredentials && upstreamBase.startsWith('http://') && config.imagicleUrl) {
    logger.warn({ upstream: upstreamBase }, 'IMAGICLE_URL is plain http: the Imagicle credentials travel unencrypted');
  }
  const metrics = new GatewayMetrics({
    ffmpegTimeoutMs: config.limits.processTimeoutMs,
    upstreamTimeoutMs: config.upstreamTimeoutMs,
    maxDurationSeconds: config.limits.maxDurationSeconds,
    version: VERSION,
    ffmpegVersion: tools.ffmpegVersion,
  });
  const upstream = new UpstreamClient({
    observe: (status, seconds) => metrics.upstreamAnswer(status, seconds),
    baseUrl: upstreamBase,
    credentials: config.imagicleCredentials,
    timeoutMs: config.upstreamTimeoutMs,
    connectTimeoutMs: config.upstreamConnectTimeoutMs,
    minBytesPerSecond: config.upstreamMinBytesPerSecond,
    tls: { ca: config.upstreamTls.ca, rejectUnauthorized: !config.upstreamTls.insecure },
  });
  // Before the first request: what a killed process left in TMP_DIR.
  const orphans = await sweepOrphanWorkFolders(config.tmpDir);
  logger.info({ tmpDir: config.tmpDir, removed: orphans }, 'swept orphan work folders');
  const processSlots = new ProcessSlots(config.queue);
  // Built once: every job (spool, queue worker, DELIVERY=sync, /v1/transcode) renders under this one policy.
  const media = mediaPolicyOf(config);
  metrics.watch({ processSlots });
  const lifecycle = new Lifecycle();
  // Built once per process: what every backend's job life and delivery attempts use.
  // Issue 25: an ambiguous attempt is a question for Imagicle (its reads) before the part is sent again.
  const reconciler = reconcilerOf(config, upstream, logger, metrics);
  // Webhooks (issue 23): a sink of the job-life module's events, with its own outbox and dispatcher.
  const webhooks = await setupWebhooks(config, logger, metrics, upstream.url);
  if (webhooks) metrics.watch({ webhooks });
  const deliveryTools: DeliveryTools = {
    metrics,
    // The overview's rates count deliveries and failures from the same events as the webhooks.
    sinks: webhooks ? [metrics.rates, webhooks] : [metrics.rates],
    reconcile: config.reconcile.mode === 'off' ? undefined : reconciler,
  };
  // QUEUE_URL set: the distributed mode, whose code (BullMQ, ioredis) is loaded only then.
  const distributed = config.distributed
    ? await (
        await import('./distributed/setup.js')
      ).startDistributed(
        config,
        (upload) => upstream.postRecording(upload),
        bins,
        logger,
        media,
        deliveryTools,
        (bytes) => processSlots.gateFor(() => bytes),
      )
    : undefined;
  const delivery = distributed
    ? { service: undefined, deliver: undefined, close: () => distributed.close() }
    : await startDelivery(
        config,
        upstream,
        bins,
        logger,
        (bytes) => processSlots.gateFor(() => bytes),
        deliveryTools,
        media,
        opening,
      );
  const watchedFolder = new WatchedFolderBoard();
  const app = createApp({
    config,
    media,
    bins,
    upstream,
    logger,
    processSlots,
    lifecycle,
    deliver: delivery.deliver,
    delivery: delivery.service,
    distributed,
    metrics,
    reconciler,
    webhooks,
    watchedFolder,
    tools,
  });
  // Headers must come quickly; a body must keep arriving (the intake's idle and minimum-rate watch, 408) and
  // the whole request is bounded by the largest upload at the minimum rate. No socket idle timeout: once an
  // upload is in, converting it may take long without a byte on the wire.
  server.headersTimeout = 30_000;
  server.requestTimeout = config.uploads.requestTimeoutMs;
  server.timeout = 0;
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 100;

  server.off('request', starting);
  server.on('request', app);
  const port = (server.address() as AddressInfo).port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger.info({ url, upstream: upstream.url }, 'gateway listening');
  const metricsServer = config.metricsListener
    ? await startMetricsServer({ ...config.metricsListener, metrics, logger })
    : undefined;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      lifecycle.beginClose();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      if (!(await lifecycle.drain(config.shutdownGraceMs))) {
        logger.warn(
          { inflight: lifecycle.inflight, graceMs: config.shutdownGraceMs },
          'shutdown grace over: aborting the uploads still running',
        );
        lifecycle.abortAll();
        // ffmpeg gets SIGTERM then SIGKILL; handlers remove their temp folders and answer 503.
        await lifecycle.drain(ABORT_DRAIN_MS);
      }
      server.closeAllConnections();
      await closed;
      await metricsServer?.close();
      await delivery.close();
      await webhooks?.close();
      await upstream.close();
      await emulator?.close();
    })();
    return closing;
  };
  return {
    url,
    port,
    server,
    bins,
    upstreamUrl: upstream.url,
    upstream,
    emulator,
    processSlots,
    lifecycle,
    metrics,
    metricsServer,
    delivery: delivery.service,
    webhooks,
    media,
    watchedFolder,
    close,
  };
}
