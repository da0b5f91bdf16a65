/**
 * Starts the embedded Imagicle emulator on an HTTP port (0 picks a free one).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { createEmulatorApp } from './app.js';
import type { Credentials } from './auth.js';
import { FaultInjector } from './faults.js';
import { ReadAccess, type ReadRefusal } from './read-routes.js';
import { EmulatorStats } from './stats.js';
import { RecordingStore } from './store.js';

const DEFAULT_MAX_FILE_BYTES = 268_435_456;

export interface EmulatorOptions {
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  storageDir: string;
  /** When set, every upload needs HTTP Basic with these credentials. */
  username?: string;
  password?: string;
  maxFileBytes?: number;
  logger?: Logger;
  /** Answer the read endpoints with this status (a user without read rights, an older server); default: answered. */
  refuseReads?: ReadRefusal;
}

export interface RunningEmulator {
  /** Base URL, e.g. http://127.0.0.1:PORT (no trailing slash). */
  url: string;
  port: number;
  close(): Promise<void>;
  store: RecordingStore;
  faults: FaultInjector;
  stats: EmulatorStats;
  /** Turns the read endpoints off and on (also `PUT /emulator/reads`). */
  reads: ReadAccess;
}

function credentialsOf(options: EmulatorOptions): Credentials | undefined {
  if (options.username === undefined && options.password === undefined) return undefined;
  return { username: options.username ?? '', password: options.password ?? '' };
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

function baseUrl(host: string, port: number): string {
  const reachable = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
}

export async function startEmulator(options: EmulatorOptions): Promise<RunningEmulator> {
  const host = options.host ?? '127.0.0.1';
  const logger = options.logger ?? pino({ level: 'silent' });
  const store = await RecordingStore.open(options.storageDir);
  const faults = new FaultInjector();
  const stats = new EmulatorStats();
  const reads = new ReadAccess(options.refuseReads);
  const app = createEmulatorApp({
    store,
    faults,
    stats,
    logger,
    credentials: credentialsOf(options),
    maxFileBytes: options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES,
    reads,
  });
  const server = createServer(app);
  const address = await listen(server, options.port ?? 0, host);
  const url = baseUrl(host, address.port);
  logger.info({ url, storageDir: options.storageDir }, 'Imagicle emulator listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve, reject) => {
      server.close((error) => (error ? reject(error) : resolve()));
      server.closeAllConnections();
    });
    return closing;
  };
  return { url, port: address.port, close, store, faults, stats, reads };
}
