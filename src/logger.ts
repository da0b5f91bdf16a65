/** Structured JSON logs (pino). Credentials are redacted wherever they could appear. */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

const REDACT_PATHS = [
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'headers["x-api-key"]',
  'password',
  '*.password',
  'credentials',
  '*.credentials',
  // Caller credentials of the gateway itself (config.access), should a config object ever be logged.
  'access',
  '*.access',
  'apiKeys',
  'basicUsers',
  // Webhook signing secrets (config.webhooks, an endpoint), should either ever be logged.
  'webhooks',
  '*.webhooks',
  'secrets',
  '*.secrets',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'imagicle-gateway' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}
