/**
 * WATCH_DIR for `serve`. With the spool (DELIVERY=wait, the default), every file taken becomes a job of the
 * gateway's store (job-door.ts): listed, counted and retried like an upload. Otherwise (DELIVERY=sync, the
 * distributed mode) the folder delivers in process through the gateway's upstream client, as `watch` does.
 */
import os from 'node:os';
import type { Config } from '../config.js';
import type { RunningGateway } from '../gateway.js';
import type { Logger } from '../logger.js';
import { spoolJobsBackend } from '../delivery/spool-jobs.js';
import { startWatcher } from './cli.js';
import { jobDoor } from './job-door.js';
import { depsFor } from './runtime.js';
import { StateStore } from './state.js';
import type { WatchedFolderStatus } from '../watched-folder.js';

export interface ServeWatcher {
  close(): Promise<void>;
  /** The folder's state, as /readyz shows it. */
  status(): WatchedFolderStatus;
}

export function startServeWatcher(
  config: Config,
  gateway: Pick<RunningGateway, 'bins' | 'upstream' | 'processSlots' | 'delivery' | 'media' | 'metrics'> &
    Partial<Pick<RunningGateway, 'watchedFolder'>>,
  logger: Logger,
): ServeWatcher {
  const state = StateStore.open(config.watch.stateDir);
  const deps = depsFor(config, gateway.bins, gateway.upstream, logger);
  const owner = `watch@${config.destination}`;
  const door = gateway.delivery
    ? jobDoor({
        delivery: gateway.delivery,
        jobs: spoolJobsBackend(gateway.delivery),
        prepare: { bins: gateway.bins, ...gateway.media, metrics: gateway.metrics },
        owner,
        log: logger.child({ component: 'watch' }),
      })
    : undefined;
  // The folder shares the cores with uploads: half of them at most, and every ffmpeg run waits for a slot of the
  // gateway's process slots (CONCURRENCY) like an upload's; it waits rather than being refused when the queue is full.
  const concurrency = Math.max(1, Math.floor(os.availableParallelism() / 2));
  const gateFor = (bytes: number) => gateway.processSlots.patientGateFor(bytes);
  const watcher = startWatcher(
    config,
    config.watch.dir!,
    { deps },
    state,
    logger,
    concurrency,
    gateFor,
    gateway.metrics,
    door,
  );
  // /readyz (and so the console's overview) shows the folder's state.
  const detach = gateway.watchedFolder?.attach(() => watcher.status());
  return {
    close: async () => {
      detach?.();
      await watcher.close();
      state.close();
    },
    status: () => watcher.status(),
  };
}
