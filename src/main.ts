#!/usr/bin/env node
/**
 * CLI entry: serve | emulator | import | watch | transcode | probe.
 * Every command shares the core used by the HTTP service.
 */
import { Command } from 'commander';
import { access, mkdtemp, rm, copyFile } from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, describeUnknownSetting, loadConfig, type Config } from './config.js';
import { createLogger } from './logger.js';
import { resolveBinaries } from './media/ffmpeg-tools.js';
import { decide, decisionText } from './pipeline/decision.js';
import { VERSION } from './version.js';
import { prepareCall } from './pipeline/prepare-call.js';
import { extensionOf } from './media/formats.js';
import { GatewayError } from './errors.js';
import { configureChildLimits, killAllChildren } from './media/process.js';
import { registerFileDoors } from './import/cli.js';
import { armBackstop, BACKSTOP_EXTRA_MS } from './backstop.js';
import { mediaPolicyOf } from './media-policy.js';
import { limitHeapGrowth } from './heap-growth.js';

/** `quiet`: serve logs the warnings itself, as JSON lines. */
function configOrExit(overrides: Record<string, string | undefined> = {}, quiet = false): Config {
  try {
    const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) as Record<
      string,
      string
    >;
    const config = loadConfig(process.env, defined);
    // Every command that runs ffmpeg (serve, probe, transcode) runs it under the same ceiling.
    configureChildLimits({ maxMemoryBytes: config.bounds.maxMemoryMb * 1024 * 1024 });
    if (!quiet) for (const u of config.unknownSettings) process.stderr.write(`warning: ${describeUnknownSetting(u)}\n`);
    return config;
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

/** A CLI error speaks of files, not of HTTP: no status, no Imagicle reason for a local file. */
function fail(error: unknown, file?: string): never {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message =
    file !== undefined && code === 'ENOENT'
      ? `${file}: no such file`
      : file !== undefined && (code === 'EISDIR' || code === 'EACCES')
        ? `${file}: cannot read it (${code})`
        : error instanceof GatewayError || error instanceof Error
          ? error.message
          : String(error);
  process.stderr.write(`error: ${file !== undefined && !message.startsWith(file) ? `${file}: ` : ''}${message}\n`);
  process.exit(1);
}

const program = new Command();
program
  .name('imagicle-gateway')
  .description('Audio normalization and transcoding gateway for Imagicle Call Recording')
  .version(VERSION, '-V, --version', 'print the version');

program
  .command('serve', { isDefault: true })
  .description('run the gateway (embedded emulator when IMAGICLE_URL is unset)')
  .option('-p, --port <port>', 'listen port (PORT)')
  .option('--host <host>', 'listen address (HOST)')
  .action(async (opts: { port?: string; host?: string }) => {
    // Before the spool loads: a large backlog is what makes the heap grow (heap-growth.ts).
    limitHeapGrowth();
    const config = configOrExit({ PORT: opts.port, HOST: opts.host }, true);
    const logger = createLogger(config.logLevel);
    for (const u of config.unknownSettings)
      logger.warn({ variable: u.name, closest: u.closest }, describeUnknownSetting(u));
    // Loaded here, not at the top: `import`, `transcode` and the other commands start without the HTTP stack.
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
    const config = configOrExit({ EMULATOR_DIR: opts.dir, EMULATOR_PORT: opts.port });
    const logger = createLogger(config.logLevel);
    const { startEmulator } = await import('./emulator/server.js');
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
  .description(
    'show what the gateway sees in a file and what it would do with it (pass through, repair, transcode, parts)',
  )
  .argument('<file>')
  .option('--json', 'print the probe and the decision as JSON')
  .action(async (file: string, opts: { json?: boolean }) => {
    const config = configOrExit();
    const bins = resolveBinaries(config);
    try {
      await access(file);
      // The same probe and plan a job runs (pipeline/prepare.ts, media/plan.ts), then the size and parts.
      const { probed, decision } = await decide(
        { path: path.resolve(file), originalName: path.basename(file), extension: extensionOf(file) },
        { bins, ...mediaPolicyOf(config) },
      );
      process.stdout.write(
        opts.json
          ? `${JSON.stringify({ file, probe: probed, decision }, null, 2)}\n`
          : decisionText(file, probed, decision),
      );
    } catch (error) {
      fail(error, file);
    }
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
      // The same call preparation as the gateway's /v1/transcode: channel order, source profile, stereo checks, LEVEL,
      // DTMF.
      const prepared = await prepareCall(
        { attachment: { path: staged, originalName: path.basename(input), extension: extensionOf(input) } },
        workDir,
        { bins, ...mediaPolicyOf(config) },
      );
      const destination = path.resolve(output).replace(/\.[^./]*$/, '') + `.${prepared.container}`;
      await copyFile(prepared.path, destination);
      process.stdout.write(
        `${JSON.stringify({ output: destination, decision: prepared.plan.action, reasons: prepared.plan.reasons, format: prepared.format, bytes: prepared.bytes, duration: prepared.isoDuration, durationSeconds: prepared.durationSeconds }, null, 2)}\n`,
      );
    } catch (error) {
      // fail() exits: the work folder goes first.
      await rm(workDir, { recursive: true, force: true });
      fail(error, input);
    }
    await rm(workDir, { recursive: true, force: true });
  });

registerFileDoors(program);
// `--version` on every command, not only on the program.
for (const command of program.commands) command.version(VERSION, '-V, --version', 'print the version');

program.parseAsync(process.argv).catch(fail);
