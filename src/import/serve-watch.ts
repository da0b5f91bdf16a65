/** WATCH_DIR for `serve`: the watched folder, delivering through the gateway's own upstream client, in process. */
import os from 'node:os';
import type { Config } from '../config.js';
import type { RunningGateway } from '../gateway.js';
import type { Logger } from '../logger.js';
import { startWatcher } from './cli.js';
import { depsFor } from './runtime.js';
import { StateStore } from './state.js';

export interface ServeWatcher {
  close(): Promise<void>;
}

export function startServeWatcher(
  config: Config,
  gateway: Pick<RunningGateway, 'bins' | 'upstream' | 'queue' | 'metrics'>,
  logger: Logger,
): ServeWatcher {
  const state = StateStore.open(config.watch.stateDir);
  const deps = depsFor(config, gateway.bins, gateway.upstream);
  // The folder shares the cores with uploads: half of them at most, and every ffmpeg run waits for a slot of the
  // gateway's work queue (CONCURRENCY) like an upload's; it waits rather than being refused when the queue is full.
  const concurrency = Math.max(1, Math.floor(os.availableParallelism() / 2));
  const gateFor = (bytes: number) => gateway.queue.patientGateFor(bytes);
  const watcher = startWatcher(
    config,
    config.watch.dir!,
    { deps },
    state,
    logger,
    concurrency,
    gateFor,
    gateway.metrics,
  );
  return {
    close: async () => {
      await watcher.close();
      state.close();
    },
  };
}
