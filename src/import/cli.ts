/**
 * The CLI doors: `import <source>` (a folder or a manifest, resumable) and
 * `watch <dir>`. Exit codes: 0 all delivered or already there, 1 anything
 * failed, 2 usage or configuration errors.
 */
import type { Command } from 'commander';
import { stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { ConfigError, describeUnknownSetting, destinationOf, loadConfig, type Config } from '../config.js';
import { gatewayDoor } from './gateway-door.js';
import { createLogger, type Logger } from '../logger.js';
import { killAllChildren, type ProcessGate } from '../media/process.js';
import { armBackstop, BACKSTOP_EXTRA_MS } from '../backstop.js';
import { isManifest, ManifestError } from './manifest.js';
import type { FileReport } from './file-report.js';
import { formatEta, problemLine, startProgress, type Progress } from './progress.js';
import { ReportWriter, type ReportMetadata } from './report.js';
import { DEFAULT_MAX_WAIT_MS, exitCodeFor, runItems } from './run.js';
import { parseInterval } from '../delivery/interval.js';
import { summaryJson, summaryText } from './summary.js';
import { IMPORT_HELP, WATCH_HELP } from './help.js';
import { readableDestination } from './readable-log.js';
import { openRuntime, RuntimeError, type DoorRuntime } from './runtime.js';
import { fileDoorProblems, metadataSources, SIDECAR_MODES, type SidecarMode } from './settings.js';
import { itemsFromFolder, itemsFromManifest } from './sources.js';
import { StateLockedError, StateStore } from './state.js';
import type { JobDoor } from './job-door.js';
import { FolderWatcher } from './watch.js';
import type { DoorOutcome, GatewayMetrics } from '../metrics.js';

const USAGE = 2;

function usage(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(USAGE);
}

/** The `serve` configuration; a CLI door has no listener, so caller authentication is not demanded of it. */
function doorConfig(overrides: Record<string, string | undefined>): Config {
  const env = { ...process.env };
  if (!env.GATEWAY_API_KEYS && !env.GATEWAY_BASIC_USERS) env.ALLOW_ANONYMOUS = 'true';
  try {
    const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) as Record<
      string,
      string
    >;
    const config = loadConfig(env, defined);
    for (const u of config.unknownSettings) process.stderr.write(`warning: ${describeUnknownSetting(u)}\n`);
    return config;
  } catch (error) {
    if (error instanceof ConfigError) usage(error.message);
    throw error;
  }
}

/** Logs go to stderr: stdout carries the summary. */
function stderrLogger(config: Config): Logger {
  return createLogger(config.logLevel, pino.destination({ fd: 2, sync: true }));
}

const positiveInt = (name: string, value: string | undefined, fallback: number): number => {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1024) usage(`${name}: must be a whole number from 1 to 1024`);
  return n;
};

function openState(dir: string): StateStore {
  try {
    return StateStore.open(path.resolve(dir));
  } catch (error) {
    if (error instanceof StateLockedError) usage(error.message);
    throw error;
  }
}

async function openRuntimeOrExit(config: Config, logger: Logger): Promise<DoorRuntime> {
  try {
    return await openRuntime(config, logger);
  } catch (error) {
    if (error instanceof RuntimeError) usage(error.message);
    throw error;
  }
}

interface ImportFlags {
  pattern?: string;
  defaults?: string;
  timezone: string;
  state?: string;
  report?: string;
  dryRun?: boolean;
  retryFailed?: boolean;
  concurrency?: string;
  progressSeconds: string;
  maxWait?: string;
  gateway?: string;
  key?: string;
  root?: string;
  allowOutside?: boolean;
  json?: boolean;
}

/** Exit status of a run stopped by Ctrl-C (128 + SIGINT), as shells report it. */
const INTERRUPTED = 130;

/** `--json`: one object per file, on stdout. */
function fileJson(r: FileReport, metadata: ReportMetadata | undefined): string {
  return `${JSON.stringify({
    type: 'file',
    path: r.path,
    status: r.status,
    pbxCallId: metadata?.pbxCallId,
    startDateTime: metadata?.startDateTime,
    imagicleIds: r.ids,
    parts: r.parts,
    duration: r.duration,
    durationSeconds: r.durationSeconds,
    decision: r.decision,
    error: r.error,
  })}\n`;
}

async function importCommand(source: string, flags: ImportFlags): Promise<void> {
  const config = doorConfig({});
  const problems = fileDoorProblems(
    { pattern: flags.pattern, defaults: flags.defaults, timezone: flags.timezone },
    '--',
  );
  const concurrency = positiveInt('--concurrency', flags.concurrency, os.availableParallelism());
  const maxWaitMs = flags.maxWait === undefined ? DEFAULT_MAX_WAIT_MS : parseInterval(flags.maxWait);
  if (maxWaitMs === undefined)
    problems.push('--max-wait: give a duration, e.g. 30m, 2h, 1d or 0 (seconds without a unit)');
  const gatewayUrl = flags.gateway;
  if (gatewayUrl !== undefined && !/^https?:\/\/[^/]/i.test(gatewayUrl))
    problems.push("--gateway: give the gateway's http(s) URL, e.g. http://gateway:8080");
  if (gatewayUrl !== undefined && flags.dryRun) problems.push('--dry-run checks files here: leave out --gateway');
  const info = await stat(source).catch(() => undefined);
  if (!info) problems.push(`${source}: no such file or folder`);
  else if (!info.isDirectory() && !isManifest(source))
    problems.push(`${source}: give a folder, or a manifest ending in .csv or .jsonl`);
  if (problems.length > 0) usage(`Invalid import:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  const sources = metadataSources(
    { pattern: flags.pattern, defaults: flags.defaults, timezone: flags.timezone },
    config.limits.maxDurationSeconds,
  );

  const root = path.resolve(source);
  let items;
  try {
    items = info!.isDirectory()
      ? await itemsFromFolder(root, sources)
      : await itemsFromManifest(root, sources, {
          root: flags.root !== undefined ? path.resolve(flags.root) : undefined,
          allowOutside: flags.allowOutside === true,
        });
  } catch (error) {
    if (error instanceof ManifestError) usage(error.message);
    throw error;
  }
  // The report and --json speak of each file in input order and with its metadata.
  const position = new Map(items.map((item, index) => [item.display, index]));
  const metadataOf = (display: string): ReportMetadata | undefined => {
    const item = items[position.get(display) ?? -1];
    return item?.metadata.ok ? item.metadata.metadata : undefined;
  };
  const logger = stderrLogger(config);
  // Unset: one state per destination (Imagicle server and user), so that another server's run is never "done".
  const destination = gatewayUrl ? `gateway-${destinationOf(gatewayUrl, 0, undefined)}` : config.destination;
  const state = openState(flags.state ?? path.join('data', 'import-state', destination));
  // --gateway: the gateway converts and delivers; nothing here runs ffmpeg or talks to Imagicle.
  const runtime = gatewayUrl ? undefined : await openRuntimeOrExit(config, logger);
  const gateway = gatewayUrl
    ? gatewayDoor({ url: gatewayUrl, key: flags.key ?? process.env.GATEWAY_KEY, door: 'import' })
    : undefined;
  const refused = await gateway?.refusal();
  if (refused) usage(refused);
  const controller = new AbortController();
  const stop = (signal: NodeJS.Signals): void => {
    process.stderr.write('\ninterrupted: finishing nothing new; rerun the same command to resume\n');
    controller.abort();
    armBackstop(signal, config.shutdownGraceMs + BACKSTOP_EXTRA_MS, logger);
    // A second Ctrl-C ends the process now; the state store keeps what was done.
    process.once('SIGINT', () => process.exit(INTERRUPTED));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);

  const report = flags.report ? new ReportWriter(path.resolve(flags.report)) : undefined;
  process.stderr.write(
    `${flags.dryRun ? 'Dry run of' : 'Importing'} ${items.length} file(s) from ${source} to ${runtime?.upstreamUrl ?? `the gateway at ${gatewayUrl}`}, ${concurrency} at a time\n`,
  );
  let progress: Progress | undefined;
  const summary = await runItems(
    items,
    {
      state,
      deps: runtime?.deps,
      // Duplicate keys are scoped by the destination too (Config.destination).
      owner: { id: `cli:import@${config.destination}` },
      tmpDir: config.tmpDir,
      dryRun: flags.dryRun === true,
      retryFailed: flags.retryFailed === true,
      signal: controller.signal,
    },
    concurrency,
    {
      onStart: (counters) => {
        const seconds = Number(flags.progressSeconds);
        progress = startProgress(counters, process.stderr, {
          intervalMs: (Number.isFinite(seconds) && seconds > 0 ? seconds : 5) * 1000,
        });
      },
      onFile: (r) => {
        const metadata = metadataOf(r.path);
        report?.add(position.get(r.path) ?? items.length, r, metadata);
        if (flags.json) process.stdout.write(fileJson(r, metadata));
        if (r.status === 'failed' || r.status === 'invalid' || r.status === 'waiting') progress?.log(problemLine(r));
        progress?.update();
      },
      onWait: (r) => {
        progress?.log(
          `waiting for Imagicle: ${r.path}: ${r.error ?? ''}; tried again in ${formatEta((r.retry?.delayMs ?? 0) / 1000)}`,
        );
        progress?.update();
      },
    },
    { maxWaitMs, gateway },
  ).finally(() => progress?.stop());
  await report?.close();
  state.close();
  await runtime?.close();
  if (flags.json) process.stdout.write(`${JSON.stringify(summaryJson(summary, flags.dryRun === true))}\n`);
  else {
    process.stdout.write(summaryText(summary, flags.dryRun === true));
    if (summary.reports.some((r) => r.status === 'failed' || r.status === 'invalid')) {
      process.stdout.write('Problems:\n');
      for (const r of summary.reports)
        if (r.status === 'failed' || r.status === 'invalid')
          process.stdout.write(`  ${r.path}: ${r.error ?? r.status}\n`);
    }
  }
  killAllChildren();
  process.exit(summary.interrupted ? INTERRUPTED : exitCodeFor(summary));
}

interface WatchFlags {
  pattern?: string;
  defaults?: string;
  timezone?: string;
  sidecar?: string;
  stableSeconds?: string;
  pollSeconds?: string;
  state?: string;
  concurrency?: string;
  logFormat?: string;
  gateway?: string;
  key?: string;
}

/** The file-door counter's outcome of a file's report; none for an interrupted one (it is taken again). */
export function doorOutcome(status: FileReport['status']): DoorOutcome | undefined {
  if (status === 'delivered' || status === 'already-delivered' || status === 'duplicate') return 'delivered';
  if (status === 'invalid') return 'invalid';
  if (status === 'failed') return 'failed';
  return undefined;
}

/** Starts the watcher for a configuration (the `watch` command, and `serve` with WATCH_DIR). */
export function startWatcher(
  config: Config,
  dir: string,
  /** None with a door that delivers elsewhere (`watch --gateway`). */
  runtime: Pick<DoorRuntime, 'deps'> | undefined,
  state: StateStore,
  logger: Logger,
  concurrency: number,
  gateFor?: (bytes: number) => ProcessGate,
  metrics?: Pick<GatewayMetrics, 'doorFile'>,
  door?: JobDoor,
): FolderWatcher {
  const sources = metadataSources(
    { pattern: config.watch.pattern, defaults: config.watch.defaults, timezone: config.watch.timezone },
    config.limits.maxDurationSeconds,
  );
  const watcher = new FolderWatcher(
    {
      dir,
      sources,
      sidecarRequired: config.watch.sidecar === 'required',
      stableSeconds: config.watch.stableSeconds,
      pollSeconds: config.watch.pollSeconds,
      concurrency,
      gateFor,
      door,
    },
    { state, deps: runtime?.deps, owner: { id: `watch@${config.destination}` }, tmpDir: config.tmpDir },
    logger.child({ component: 'watch' }),
    (report) => {
      if (!metrics) return;
      metrics.doorFile('watch', 'taken');
      const outcome = doorOutcome(report.status);
      if (outcome) metrics.doorFile('watch', outcome);
    },
  );
  watcher.start();
  return watcher;
}

async function watchCommand(dir: string, flags: WatchFlags): Promise<void> {
  if (flags.sidecar !== undefined && !(SIDECAR_MODES as readonly string[]).includes(flags.sidecar))
    usage(`--sidecar: must be one of ${SIDECAR_MODES.join(', ')}`);
  const config = doorConfig({
    WATCH_DIR: dir,
    WATCH_PATTERN: flags.pattern,
    WATCH_DEFAULTS: flags.defaults,
    WATCH_TIMEZONE: flags.timezone,
    WATCH_SIDECAR: flags.sidecar as SidecarMode | undefined,
    WATCH_STABLE_SECONDS: flags.stableSeconds,
    WATCH_POLL_SECONDS: flags.pollSeconds,
    WATCH_STATE_DIR: flags.state,
  });
  const info = await stat(config.watch.dir!).catch(() => undefined);
  if (!info?.isDirectory()) usage(`${dir}: no such folder`);
  const concurrency = positiveInt('--concurrency', flags.concurrency, os.availableParallelism());
  if (flags.logFormat !== undefined && !['json', 'text'].includes(flags.logFormat))
    usage('--log-format: must be json or text');
  // A person at a terminal reads lines like import's; a service manager or a pipe gets JSON lines.
  const readable = flags.logFormat === 'text' || (flags.logFormat === undefined && process.stdout.isTTY === true);
  const logger = readable
    ? createLogger(config.logLevel, readableDestination(process.stdout))
    : createLogger(config.logLevel);
  const gatewayUrl = flags.gateway;
  if (gatewayUrl !== undefined && !/^https?:\/\/[^/]/i.test(gatewayUrl))
    usage("--gateway: give the gateway's http(s) URL, e.g. http://gateway:8080");
  // --gateway: each file a job of that gateway (door watch), moved when its job ends; nothing delivered here.
  const door = gatewayUrl
    ? gatewayDoor({ url: gatewayUrl, key: flags.key ?? process.env.GATEWAY_KEY, door: 'watch' })
    : undefined;
  const refused = await door?.refusal();
  if (refused) usage(refused);
  const state = openState(
    flags.state !== undefined || !gatewayUrl
      ? config.watch.stateDir
      : path.resolve('data', 'watch-state', `gateway-${destinationOf(gatewayUrl, 0, undefined)}`),
  );
  const runtime = door ? undefined : await openRuntimeOrExit(config, logger);
  const watcher = startWatcher(
    config,
    config.watch.dir!,
    runtime,
    state,
    logger,
    concurrency,
    undefined,
    undefined,
    door,
  );
  const shutdown = (signal: NodeJS.Signals): void => {
    armBackstop(signal, config.shutdownGraceMs + BACKSTOP_EXTRA_MS, logger);
    void watcher.close().then(async () => {
      state.close();
      await runtime?.close();
      killAllChildren();
      process.exit(0);
    });
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

const exitAsUsage = (cmd: Command): Command =>
  cmd.exitOverride((error) => {
    process.exit(error.exitCode === 0 ? 0 : USAGE);
  });

export function registerFileDoors(program: Command): void {
  exitAsUsage(
    program
      .command('import')
      .description('import a folder (recursively) or a manifest (.csv, .jsonl) of recordings; resumable')
      .argument('<source>')
      .option(
        '--pattern <pattern>',
        'metadata from file names, e.g. "{start:yyyyMMdd-HHmmss}_{direction:in=1,out=2}_{local}_{remote}_{callId}"',
      )
      .option('--defaults <json>', 'jsondata fields for what no other source gives')
      .option('--timezone <zone>', 'IANA time zone of start times without an offset', 'UTC')
      .option(
        '--state <dir>',
        'where progress is kept (rerun with the same to resume; default data/import-state/<destination>)',
      )
      .option('--report <file.csv>', 'one line per file: path, status, Imagicle ids, parts, duration, decision, error')
      .option('--dry-run', 'probe and check everything, send nothing')
      .option('--retry-failed', 'send again the files an earlier run recorded as failed')
      .option('--concurrency <n>', 'ffmpeg runs at once, twice as many files in flight (default: the number of cores)')
      .option(
        '--max-wait <duration>',
        'how long a file may wait for Imagicle (down, 429, 503) in this run before it is left pending for a rerun (default 1h)',
      )
      .option(
        '--gateway <url>',
        'make each file a job of the gateway at this URL (its jobs API and console show them, door import)',
      )
      .option(
        '--key <key>',
        'with --gateway: one of its GATEWAY_API_KEYS (default: the GATEWAY_KEY environment variable)',
      )
      .option('--progress-seconds <s>', 'seconds between progress lines when not on a terminal', '5')
      .option('--json', 'print one JSON object per file and a summary object on stdout (for scripts)')
      .addHelpText('after', IMPORT_HELP)
      .option('--root <dir>', "a manifest's rows may name files under this folder (default: the manifest's own)")
      .option('--allow-outside', "a manifest's rows may name files anywhere (still regular files only, never links)")
      .action(async (source: string, flags: ImportFlags) => {
        await importCommand(source, flags);
      }),
  );
  exitAsUsage(
    program
      .command('watch')
      .description('deliver the recordings dropped into a folder (polling; works on network shares)')
      .argument('<dir>')
      .option('--pattern <pattern>', 'metadata from file names (WATCH_PATTERN)')
      .option('--defaults <json>', 'jsondata fields for what no other source gives (WATCH_DEFAULTS)')
      .option('--timezone <zone>', 'time zone of start times without an offset (WATCH_TIMEZONE)')
      .option('--sidecar <mode>', 'required: take a file once its .json exists; optional: once stable (WATCH_SIDECAR)')
      .option('--stable-seconds <s>', 'size and mtime unchanged this long (WATCH_STABLE_SECONDS, default 5)')
      .option('--poll-seconds <s>', 'seconds between scans (WATCH_POLL_SECONDS, default 2)')
      .option('--state <dir>', 'where progress is kept (WATCH_STATE_DIR, default data/watch-state/<destination>)')
      .option('--concurrency <n>', 'files at once (default: the number of cores)')
      .option('--log-format <format>', 'text (readable lines) or json; default: text on a terminal, json elsewhere')
      .option('--gateway <url>', 'make each file a job of the gateway at this URL (door watch); moved when it ends')
      .option(
        '--key <key>',
        'with --gateway: one of its GATEWAY_API_KEYS (default: the GATEWAY_KEY environment variable)',
      )
      .addHelpText('after', WATCH_HELP)
      .action(async (dir: string, flags: WatchFlags) => {
        await watchCommand(dir, flags);
      }),
  );
}
