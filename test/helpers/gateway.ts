/** Starts a gateway with its embedded emulator, both on port 0, with private temp folders. */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { openAsBlob } from 'node:fs';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { startGateway, type RunningGateway } from '../../src/gateway.js';
import type { RunningEmulator } from '../../src/emulator/server.js';

export interface TestGateway {
  gateway: RunningGateway;
  config: Config;
  emulator: RunningEmulator;
  url: string;
  tmpDir: string;
  logs: string[];
  tempEntries(): Promise<string[]>;
  /** The temp folder's entries once in-flight cleanups had a moment to finish (they run after the answer). */
  settledTempEntries(): Promise<string[]>;
  close(): Promise<void>;
}

export async function startTestGateway(env: Record<string, string> = {}): Promise<TestGateway> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'gw-test-'));
  const tmpDir = path.join(root, 'tmp');
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(chunk.toString('utf8'));
      done();
    },
  });
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    EMULATOR_PORT: '0',
    TMP_DIR: tmpDir,
    SPOOL_DIR: path.join(root, 'spool'),
    // Tests post the same fixture many times on purpose; the dedup tests turn it on.
    DEDUP_WINDOW: '0',
    EMULATOR_DIR: path.join(root, 'emulator'),
    LOG_LEVEL: 'info',
    SHUTDOWN_GRACE_MS: '1000',
    // Most tests check the rules for an unknown outcome without Imagicle's reads (held, counted); the
    // reconciliation tests turn it on (RECONCILE=auto, the product's default).
    RECONCILE: 'off',
    ...env,
  });
  const gateway = await startGateway(config, createLogger(config.logLevel, sink));
  if (!gateway.emulator && !env.IMAGICLE_URL) throw new Error('expected the embedded emulator');
  return {
    gateway,
    config,
    // With IMAGICLE_URL set there is no emulator; tests of that case do not touch it.
    emulator: gateway.emulator as RunningEmulator,
    url: gateway.url,
    tmpDir,
    logs,
    tempEntries: async () => readdir(tmpDir).catch(() => []),
    settledTempEntries: async () => {
      for (let i = 0; i < 40; i++) {
        const entries = await readdir(tmpDir).catch(() => []);
        if (entries.length === 0) return entries;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return readdir(tmpDir).catch(() => []);
    },
    close: async () => {
      await gateway.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

export const SAMPLE_METADATA = {
  startDateTime: '2026-11-29T10:15:00.0000000Z',
  direction: 2,
  localParty: { username: 'giuliano', phoneNumber: '376' },
  remoteParty: { phoneNumber: '+390212345678' },
  pbxCallId: 'test-1',
  notes: 'test call',
  preserved: false,
};

/** A multipart form like Imagicle's: jsondata (as a JSON part) and the attachment from disk. */
export async function recordingForm(
  file: string,
  metadata: unknown = SAMPLE_METADATA,
  options: { filename?: string; contentType?: string; attachmentFirst?: boolean } = {},
): Promise<FormData> {
  const form = new FormData();
  const json = new Blob([typeof metadata === 'string' ? metadata : JSON.stringify(metadata)], {
    type: 'application/json',
  });
  const audio = await openAsBlob(file, { type: options.contentType ?? 'application/octet-stream' });
  const name = options.filename ?? path.basename(file);
  if (options.attachmentFirst) {
    form.append('attachment', audio, name);
    form.append('jsondata', json);
  } else {
    form.append('jsondata', json);
    form.append('attachment', audio, name);
  }
  return form;
}
