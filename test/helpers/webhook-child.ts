/**
 * A process that runs only the webhook sink over a file outbox, for the
 * kill -9 test: WEBHOOK_CHILD (JSON) gives the outbox folder, the settings
 * and, optionally, a job and events to publish. It prints "published" once
 * publish() returned (the deliveries are on disk), then runs until killed.
 */
import { createLogger } from '../../src/logger.js';
import type { JobEvent } from '../../src/delivery/job-events.js';
import type { JobRecord } from '../../src/delivery/job.js';
import { FileOutbox } from '../../src/webhooks/file-outbox.js';
import { WebhookService } from '../../src/webhooks/service.js';
import type { WebhookSettings } from '../../src/webhooks/settings.js';

interface ChildInput {
  dir: string;
  settings: WebhookSettings;
  publish?: { job: JobRecord; events: JobEvent[] };
}

const input = JSON.parse(process.env.WEBHOOK_CHILD ?? '{}') as ChildInput;
const service = new WebhookService({
  settings: input.settings,
  outbox: await FileOutbox.open(input.dir),
  logger: createLogger('info'),
  imagicleUrl: undefined,
  pollMs: 100,
});
service.start();
if (input.publish) await service.publish(input.publish.job, input.publish.events);
process.stdout.write('published\n');
process.on('SIGTERM', () => void service.close().then(() => process.exit(0)));
