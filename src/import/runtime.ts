/**
 * What the file doors need to deliver in process, built from the same
 * configuration as `serve`: ffmpeg checked, the upstream client (or the
 * embedded emulator, announced as loudly as `serve` does), the retry policy.
 */
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { startEmulator, type RunningEmulator } from '../emulator/server.js';
import { UpstreamClient } from '../imagicle/client.js';
import { checkTools, resolveBinaries, type FfmpegBinaries } from '../media/ffmpeg-tools.js';
import { configureChildLimits } from '../media/process.js';
import type { DeliverRecordingDeps } from '../delivery/deliver-recording.js';
import { mediaPolicyOf } from '../media-policy.js';
import { reconcilerOf } from '../reconciler.js';
import { JobLife } from '../delivery/job-life.js';
import { deliverySettingsFor } from '../delivery/setup.js';
import { createLogger } from '../logger.js';

export interface DoorRuntime {
  deps: DeliverRecordingDeps;
  upstreamUrl: string;
  close(): Promise<void>;
}

export class RuntimeError extends Error {}

export function depsFor(
  config: Config,
  bins: FfmpegBinaries,
  upstream: UpstreamClient,
  logger?: Logger,
): DeliverRecordingDeps {
  return {
    // As serve does: an attempt whose outcome is unknown is a question for Imagicle before a re-send.
    reconcile:
      config.reconcile.mode === 'off' || !logger ? undefined : reconcilerOf(config, upstream, logger, undefined),
    // The same media settings as `serve` (LEVEL, VOX_SAMPLE_RATE, stereo, limits).
    bins,
    ...mediaPolicyOf(config),
    deliver: (upload) => upstream.postRecording(upload),
    policy: config.delivery.retry,
    // The gateway's failure policy and worker backoff (SPOOL_RETRY_MAX_DELAY_MS): a transient cause waits, a
    // refusal fails. The age bound is the door's own (import --max-wait; watch keeps a file until it goes).
    life: new JobLife(
      { workerPolicy: deliverySettingsFor(config).workerPolicy, maxAgeMs: config.delivery.spoolMaxAgeMs },
      { log: logger ?? createLogger('silent') },
    ),
  };
}

export async function openRuntime(config: Config, logger: Logger): Promise<DoorRuntime> {
  // The file doors run ffmpeg under the same memory ceiling as serve (FFMPEG_MAX_MEMORY_MB).
  configureChildLimits({ maxMemoryBytes: config.bounds.maxMemoryMb * 1024 * 1024 });
  const bins = resolveBinaries({ ffmpegPath: config.ffmpegPath, ffprobePath: config.ffprobePath });
  const tools = await checkTools(bins);
  if (!tools.ok) throw new RuntimeError(`ffmpeg is not usable: ${tools.problems.join('; ')}`);
  let emulator: RunningEmulator | undefined;
  let base = config.imagicleUrl;
  if (!base) {
    emulator = await startEmulator({
      port: config.emulatorPort,
      host: '127.0.0.1',
      storageDir: config.emulatorDir,
      logger: logger.child({ component: 'emulator' }, { level: 'warn' }),
    });
    base = emulator.url;
    logger.warn(
      { emulator: emulator.url, storage: config.emulatorDir },
      `NO IMAGICLE_URL SET: recordings go to the EMBEDDED IMAGICLE EMULATOR at ${emulator.url} (kept in ${config.emulatorDir}). Set IMAGICLE_URL to deliver to a real server.`,
    );
  }
  if (config.upstreamTls.insecure)
    logger.warn({ upstream: base }, 'IMAGICLE_TLS_INSECURE=true: the certificate of Imagicle is NOT verified');
  const upstream = new UpstreamClient({
    baseUrl: base,
    credentials: config.imagicleCredentials,
    timeoutMs: config.upstreamTimeoutMs,
    connectTimeoutMs: config.upstreamConnectTimeoutMs,
    minBytesPerSecond: config.upstreamMinBytesPerSecond,
    tls: { ca: config.upstreamTls.ca, rejectUnauthorized: !config.upstreamTls.insecure },
  });
  return {
    deps: depsFor(config, bins, upstream, logger),
    upstreamUrl: upstream.url,
    close: async () => {
      await upstream.close();
      await emulator?.close();
    },
  };
}
