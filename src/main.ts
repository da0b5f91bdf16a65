#!/usr/bin/env node
/**
 * CLI entry: serve | emulator | import | watch | transcode | probe.
 * Every command shares the core used by the HTTP service.
 */
import { Command } from 'commander';
import { mkdtemp, rm, copyFile } from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createLogger } from './logger.js';
import { isProbeFailure, probe, resolveBinaries } from './media/ffmpeg.js';
import { prepareAudio } from './pipeline/prepare.js';
import { extensionOf } from './media/formats.js';
import { GatewayError } from './errors.js';
import { configureChildLimits, killAllChildren } from './media/process.js';
import { registerFileDoors } from './import/cli.js';
import { armBackstop, BACKSTOP_EXTRA_MS } from './backstop.js';
import { mediaPolicyOf } from './media-policy.js';

function configOrExit(overrides: Record<string, string | undefined> = {}): Config {
  try {
    const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) as Record<
      string,
      string
    >;
    const config = loadConfig(process.env, defined);
    // Every command that runs ffmpeg (serve, probe, transcode) runs it under the same ceiling.
    configureChildLimits({ maxMemoryBytes: config.bounds.maxMemoryMb * 1024 * 1024 });
    return config;
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

function fail(error: unknown): never {
  const message =
    error instanceof GatewayError
      ? `${error.message} (HTTP ${error.status}, reason ${error.reason})`
      : error instanceof Error
        ? error.message
        : String(error);
  process.stderr.write(`error: ${message}\n`);
  process.exit(1);
}

const program = new Command();
program.name('imagicle-gateway').description('Audio normalization and transcoding gateway for Imagicle Call Recording');

program
  .command('serve', { isDefault: true })
  .description('run the gateway (embedded emulator when IMAGICLE_URL is unset)')
  .option('-p, --port <port>', 'listen port (PORT)')
  .option('--host <host>', 'listen address (HOST)')
  .action(async (opts: { port?: string; host?: string }) => {
    const config = configOrExit({ PORT: opts.port, HOST: opts.host });
    const logger = createLogger(config.logLevel);
    // Loaded here, not at the top: `import`, `convert` and the other commands start without the HTTP stack.
    const { startGateway } = await import('./gateway.js');
    const { startServeWatcher } = await import('./import/serve-watch.js');
    let gateway;
    try {
      gateway = await startGateway(config, logger);
    } catch (error) {
      logger.fatal({ err: error }, 'startup failed');
      process.exit(1);
    }
    // WATCH_DIR: the watched folder delivers through the same upstream, in this process.
    const watcher = config.watch.dir ? startServeWatcher(config, gateway, logger) : undefined;
    const shutdown = (signal: NodeJS.Signals): void => {
      logger.info({ signal, graceMs: config.shutdownGraceMs }, 'shutting down');
      // Backstop only: close() itself aborts what is left after the grace period and waits a few seconds for cleanup.
      armBackstop(signal, config.shutdownGraceMs + BACKSTOP_EXTRA_MS, logger);
      void Promise.resolve(watcher?.close())
        .then(() => gateway.close())
        .then(() => {
          killAllChildren();
          process.exit(0);
        });
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });

program
  .command('emulator')
  .description('run the Imagicle emulator on its own')
  .option('-p, --port <port>', 'listen port', '8081')
  .option('--host <host>', 'listen address', '127.0.0.1')
  .option('--dir <dir>', 'where accepted recordings are kept (EMULATOR_DIR)')
  .option('--username <user>', 'require HTTP Basic with this user')
  .option('--password <password>', 'and this password')
  .action(async (opts: { port: string; host: string; dir?: string; username?: string; password?: string }) => {
    const config = configOrExit({ EMULATOR_DIR: opts.dir });
    const logger = createLogger(config.logLevel);
    const { startEmulator } = await import('./emulator/index.js');
    const emulator = await startEmulator({
      port: Number(opts.port),
      host: opts.host,
      storageDir: config.emulatorDir,
      ...(opts.username !== undefined ? { username: opts.username, password: opts.password ?? '' } : {}),
      logger,
    });
    logger.info({ url: emulator.url, storage: config.emulatorDir }, `Imagicle emulator listening at ${emulator.url}`);
    const stop = (): void => void emulator.close().then(() => process.exit(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });

program
  .command('probe')
  .description('show what the gateway sees in a file, and what it would do with it')
  .argument('<file>')
  .action(async (file: string) => {
    const config = configOrExit();
    const bins = resolveBinaries(config);
    const result = await probe(bins, path.resolve(file), {
      extension: extensionOf(file),
      timeoutMs: 30_000,
      voxSampleRate: config.voxSampleRate,
    });
    if (isProbeFailure(result)) fail(new Error(result.message));
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  });

program
  .command('transcode')
  .description('convert a file to audio Imagicle accepts, and print its exact duration')
  .argument('<input>')
  .argument('<output>', 'output file (its extension is replaced by .wav or .mp3 as configured)')
  .option('-f, --format <format>', 'pcm16 | pcm8 | alaw | mulaw | mp3 (OUTPUT_FORMAT)')
  .option('-r, --rate <hz>', 'sample rate (OUTPUT_SAMPLE_RATE)')
  .option('-c, --channels <mode>', 'keep | mono | stereo (CHANNELS)')
  .action(async (input: string, output: string, opts: { format?: string; rate?: string; channels?: string }) => {
    const config = configOrExit({ OUTPUT_FORMAT: opts.format, OUTPUT_SAMPLE_RATE: opts.rate, CHANNELS: opts.channels });
    const bins = resolveBinaries(config);
    mkdirSync(config.tmpDir, { recursive: true });
    const workDir = await mkdtemp(path.join(config.tmpDir ?? os.tmpdir(), 'cli-'));
    try {
      const staged = path.join(workDir, 'input');
      await copyFile(path.resolve(input), staged);
      const prepared = await prepareAudio(
        { path: staged, originalName: path.basename(input), extension: extensionOf(input) },
        workDir,
        { bins, ...mediaPolicyOf(config) },
      );
      const destination = path.resolve(output).replace(/\.[^./]*$/, '') + `.${prepared.container}`;
      await copyFile(prepared.path, destination);
      process.stdout.write(
        `${JSON.stringify({ output: destination, decision: prepared.plan.action, reasons: prepared.plan.reasons, format: prepared.format, bytes: prepared.bytes, duration: prepared.isoDuration, durationSeconds: prepared.durationSeconds }, null, 2)}\n`,
      );
    } catch (error) {
      fail(error);
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  });

registerFileDoors(program);

program.parseAsync(process.argv).catch(fail);
