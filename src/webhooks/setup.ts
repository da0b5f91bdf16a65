/**
 * Builds the webhooks from the configuration: none when WEBHOOKS names no
 * endpoint; else the outbox (SPOOL_DIR/webhooks, or the queue's Redis in the
 * distributed mode), the sink and its dispatcher, started.
 */
import path from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { WebhookMetricsSink } from './dispatcher.js';
import { FileOutbox } from './file-outbox.js';
import type { WebhookOutbox } from './outbox.js';
import { WebhookService } from './service.js';
import { webhooksConfigured } from './settings.js';

/** Where the file outbox lives, inside the spool. */
function webhookOutboxDir(spoolDir: string): string {
  return path.join(spoolDir, 'webhooks');
}

async function openWebhookOutbox(config: Config, logger: Logger): Promise<WebhookOutbox> {
  // ioredis is loaded only in the distributed mode (a spool gateway starts without it).
  if (config.distributed) return (await import('./redis-outbox.js')).RedisOutbox.open(config.distributed.queueUrl);
  return FileOutbox.open(webhookOutboxDir(config.delivery.spoolDir), (file, error) =>
    logger.error({ file, err: error }, 'webhooks: an unreadable delivery file is left as it is'),
  );
}

/** The started webhook sink, or undefined when no webhook is configured. Close it on shutdown. */
export async function setupWebhooks(
  config: Config,
  logger: Logger,
  metrics?: WebhookMetricsSink,
  /** The Imagicle the gateway delivers to (IMAGICLE_URL, or the embedded emulator's): never named in a body. */
  upstreamUrl: string | undefined = config.imagicleUrl,
): Promise<WebhookService | undefined> {
  if (!webhooksConfigured(config.webhooks)) return undefined;
  const service = new WebhookService({
    settings: config.webhooks,
    outbox: await openWebhookOutbox(config, logger),
    logger,
    imagicleUrl: upstreamUrl,
    metrics,
  });
  service.start();
  return service;
}
