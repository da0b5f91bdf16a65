/**
 * The express app: routes, the per-request job folder and abort signal, and
 * the single error handler that answers in Imagicle's error shape.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { badRequest, GatewayError, Reason, toGatewayError } from '../errors.js';
import { checkTools, type FfmpegBinaries, type ToolCheck } from '../media/ffmpeg-tools.js';
import type { UpstreamClient } from '../imagicle/client.js';
import { RECORDINGS_PATH } from '../imagicle/client.js';
import type { Deliver, IngestResult } from '../pipeline/ingest.js';
import { parseMetadata } from '../pipeline/metadata.js';
import type { PreparedAudio } from '../pipeline/prepared.js';
import { prepareCall } from '../pipeline/prepare-call.js';
import { parseStereoOptions, REMOTE_ATTACHMENT, STEREO_FIELDS } from '../pipeline/call-options.js';
import { DEFAULT_INTAKE_LIMITS, receiveUpload, type ReceivedUpload } from './intake.js';
import { answerUpload, doorOf, prefersAsync, type UploadDelivery } from './answer.js';
import type { RecordingMetadata } from '../imagicle/schema.js';
import { runWithProcessGate } from '../media/process.js';
import type { ProcessSlots } from '../pipeline/process-slots.js';
import { createAccessControl, forwardableAuthorization, type Caller } from './auth.js';
import { Lifecycle } from './shutdown.js';
import type { DeliveryService } from '../delivery/service.js';
import { DirectDelivery } from '../delivery/direct.js';
import { deliverySettingsFor } from '../delivery/setup.js';
import { createJobsRouter } from './jobs.js';
import { spoolJobsBackend } from '../delivery/spool-jobs.js';
import type { JobsBackend } from '../delivery/jobs-backend.js';
import { createJobAudioRouter } from './job-audio.js';
import { decisionOf, GatewayMetrics, type Decision } from '../metrics.js';
import { serveOpenApi } from './openapi.js';
import { serveConsole } from './console.js';
import { requestOwner, type Owner } from './owner.js';
import { LoginThrottle } from './login-throttle.js';
import { DiskLedger, type DiskScope } from '../pipeline/disk.js';
import { mediaPolicyOf, type MediaSettings } from '../media-policy.js';
import { CALLBACK_FIELD, takeCallbackUrl } from '../webhooks/callback.js';
import { createWebhooksRouter } from '../webhooks/router.js';
import type { WebhookService } from '../webhooks/service.js';
import { freeSpaceOf } from './free-space.js';
import type { WatchedFolderBoard } from '../watched-folder.js';

export interface AppDeps {
  config: Config;
  /** The media policy built once from `config` (media-policy.ts); none: built here, once per app. */
  media?: MediaSettings;
  bins: FfmpegBinaries;
  upstream: UpstreamClient;
  logger: Logger;
  /** One delivery attempt (DELIVERY=sync applies the retry policy around it); defaults to one direct POST. */
  deliver?: Deliver;
  /** Admission of ffmpeg/ffprobe runs (CONCURRENCY, QUEUE_LIMIT); none: unlimited. */
  processSlots?: ProcessSlots;
  /** In-flight uploads, for a graceful close. */
  lifecycle?: Lifecycle;
  /** The spool (DELIVERY=wait): uploads are spooled and the jobs API is served; none: direct delivery. */
  delivery?: DeliveryService | undefined;
  /** The distributed mode (QUEUE_URL): uploads go to the queue (none under ROLE=worker), jobs API over it. */
  distributed?: DistributedHttp | undefined;
  /** Prometheus metrics (GET /metrics); none: a registry of this app's own. */
  metrics?: GatewayMetrics | undefined;
  /** Webhooks (WEBHOOKS): /v1/webhooks, and the per-upload callbackUrl's check; none: callbackUrl is refused. */
  webhooks?: WebhookService | undefined;
  /** Reconciliation with Imagicle's reads (issue 25): /readyz says whether it is available. */
  reconciler?: ReadinessOfReconciliation | undefined;
  /** WATCH_DIR under serve: /readyz shows the watched folder's state once its watcher attached itself. */
  watchedFolder?: WatchedFolderBoard | undefined;
  /** The start-up's check of ffmpeg, moments old: /readyz's first answer uses it (three processes fewer). */
  tools?: ToolCheck | undefined;
}

/** What /readyz needs of the reconciler (imagicle/reconcile.ts). */
interface ReadinessOfReconciliation {
  available(): boolean | undefined;
  unavailableReason(): string | undefined;
  probe(signal?: AbortSignal): Promise<boolean | undefined>;
}

/** What /readyz shows of the distributed mode's own checks (distributed/setup.ts answers it). */
interface QueueReadiness {
  ok: boolean;
  redis: { ok: boolean; error: string | undefined };
  blobDir: { ok: boolean; error: string | undefined };
}

interface DistributedHttp {
  delivery: UploadDelivery | undefined;
  jobs: JobsBackend | undefined;
  ready(): Promise<QueueReadiness>;
}

type Mode = 'drop-in' | 'native' | 'transcode';

interface RequestContext {
  id: string;
  log: Logger;
  signal: AbortSignal;
  workDir: string;
  /** This request's disk reservations in TMP_DIR (released when its folder is removed). */
  disk: DiskScope;
}

export function createApp(deps: AppDeps): express.Express {
  const { config, logger } = deps;
  const deliver: Deliver = deps.deliver ?? ((upload) => deps.upstream.postRecording(upload));
  const lifecycle = deps.lifecycle ?? new Lifecycle();
  const { processSlots } = deps;
  // Where uploads go: the queue (distributed mode), the spool (DELIVERY=wait), or a job kept in memory for the
  // request (DELIVERY=sync). All three run the same procedure (delivery/run-job.ts) and answer alike (answer.ts).
  const uploads: UploadDelivery | undefined = deps.distributed
    ? deps.distributed.delivery
    : (deps.delivery ?? new DirectDelivery(deliver, deliverySettingsFor(config)));
  const metrics = deps.metrics ?? new GatewayMetrics();
  const media = deps.media ?? mediaPolicyOf(config);
  metrics.watch({ processSlots, spool: deps.delivery?.spool });
  // Work folders (DELIVERY=sync, /v1/transcode) reserve their output in TMP_DIR before decoding.
  const tmpLedger = new DiskLedger(config.tmpDir, {
    label: 'the work folder (TMP_DIR)',
    minFreeBytes: config.bounds.minFreeDiskBytes,
  });
  const app = express();
  app.set('trust proxy', config.trustProxy);
  if (config.trustProxy === true) {
    logger.warn(
      'TRUST_PROXY=true believes any X-Forwarded-For: a caller can claim any address and escape the failed-login ' +
        "throttle. Set TRUST_PROXY to your proxies' addresses or subnets instead (docs/security.md)",
    );
  }
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(securityHeaders());
  app.use(lifecycle.middleware());

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', uptimeSeconds: Math.round(process.uptime()) });
  });

  // /readyz is open to anyone and costs four processes and an outbound request: one check per READY_CACHE_MS at most.
  let readiness:
    | {
        at: number;
        checks: Promise<[ToolCheck, Awaited<ReturnType<UpstreamClient['ping']>>]>;
      }
    | undefined;
  // Free space of the folders the gateway writes to (the overview's, not a readiness condition).
  const folders = {
    tmp: config.tmpDir,
    spool: deps.delivery ? config.delivery.spoolDir : undefined,
    blob: config.distributed?.blobDir,
  };
  const checkReadiness = (): { fresh: boolean; checks: NonNullable<typeof readiness>['checks'] } => {
    const fresh = !readiness || performance.now() - readiness.at > READY_CACHE_MS;
    if (fresh || !readiness) {
      // The first check takes the start-up's ffmpeg check (issue 21: restart to ready); later ones run it again.
      const tools = !readiness && deps.tools ? Promise.resolve(deps.tools) : checkTools(deps.bins);
      readiness = { at: performance.now(), checks: Promise.all([tools, deps.upstream.ping()]) };
      // Before the first question: one cheap read tells whether reconciliation will work (it never blocks readiness).
      if (deps.reconciler && deps.reconciler.available() === undefined) {
        void deps.reconciler.probe(AbortSignal.timeout(5_000)).catch(() => undefined);
      }
    }
    return { fresh, checks: readiness.checks };
  };
  // upstream_up reads the same cached check at scrape time.
  metrics.watch({ upstreamReachable: async () => (await checkReadiness().checks)[1].reachable });
  app.get('/readyz', async (_req, res) => {
    const { fresh, checks } = checkReadiness();
    const [tools, upstream] = await checks;
    // Redis and BLOB_DIR are checked on every call: a lost share or queue must take the process out at once.
    const queueReady = await deps.distributed?.ready();
    const ready = tools.ok && upstream.reachable && (queueReady?.ok ?? true);
    // Once per check, not per poll: the address and the low-level error go to the log only.
    if (fresh && !upstream.reachable) {
      logger.warn({ upstream: deps.upstream.url, error: upstream.error }, 'readiness: Imagicle unreachable');
    }
    res.status(ready ? 200 : 503).json({
      status: ready ? 'ready' : 'not ready',
      ffmpeg: { ok: tools.ok, ffmpeg: tools.ffmpegVersion, ffprobe: tools.ffprobeVersion, problems: tools.problems },
      // The upstream's address is the operator's business (it is in the startup log), not the world's.
      upstream: { reachable: upstream.reachable, status: upstream.status },
      ...(queueReady ? { redis: queueReady.redis, blobDir: queueReady.blobDir } : {}),
      ...(deps.reconciler ? { reconciliation: reconciliationOf(deps.reconciler) } : {}),
    });
  });

  // One failed-login throttle for every door that checks credentials (/metrics too).
  const throttle = new LoginThrottle({ limit: config.bounds.authFailLimit, windowMs: config.bounds.authFailWindowMs });
  // Metrics show every tenant's numbers: an operator's endpoint (an admin key), unless METRICS_PUBLIC=true; a
  // scraper without credentials uses the METRICS_PORT listener instead (http/metrics-server.ts).
  const metricsAccess = config.metricsPublic ? [] : [createAccessControl(config.access, throttle), operatorsOnly];
  app.get('/metrics', ...metricsAccess, async (_req, res) => {
    res.set('Content-Type', metrics.contentType()).send(await metrics.expose());
  });
  // The overview's rates: the last hour per 5 minutes, kept by the gateway (rate-history.ts), same access.
  app.get('/metrics/rates', ...metricsAccess, (_req, res) => {
    res.json(metrics.rates.view());
  });
  // The overview's free space and watched folder: operators only (free space tells whoever would fill a disk when).
  app.get('/metrics/status', ...metricsAccess, async (_req, res) => {
    const watch = deps.watchedFolder?.status();
    res.json({ disk: await freeSpaceOf(folders), ...(watch ? { watch } : {}) });
  });
  // The API contract (no secrets in it) and the console's static files (its data comes from /v1 and /metrics).
  app.get('/openapi.json', serveOpenApi(config));
  app.use('/ui', serveConsole());

  // Callers authenticate for everything that reaches Imagicle or runs ffmpeg, future /v1 routes included.
  app.use([RECORDINGS_PATH, '/v1'], createAccessControl(config.access, throttle));

  const upload = (mode: Mode) => async (req: Request, res: Response) => {
    res.on('close', () => {
      const locals = res.locals as { decision?: Decision; outcome?: string };
      metrics.upload(mode, locals.decision ?? 'none', locals.outcome ?? outcomeOf(mode, res));
    });
    // Overload: refused before a byte of the upload is stored.
    if (processSlots?.isFull()) throw processSlots.busyError();
    if (mode !== 'transcode') uploads?.checkCapacity(Number(req.headers['content-length']) || undefined);
    const end = lifecycle.begin(res);
    try {
      const ctx = await openContext(req, res, config, logger, lifecycle.signal, tmpLedger);
      try {
        const work = (): Promise<void> => handleUpload(mode, req, res, ctx, { ...deps, media, metrics }, uploads);
        // Every ffmpeg/ffprobe this upload runs, in any module, waits for one of the process slots.
        await (processSlots ? runWithProcessGate(processSlots.gateFor(uploadSize(req)), work) : work());
      } catch (error) {
        throw lifecycle.translate(error, ctx.signal);
      } finally {
        await rm(ctx.workDir, { recursive: true, force: true });
        ctx.disk.releaseAll();
      }
    } finally {
      end();
    }
  };
  // The jobs API (covered by the access control on /v1 above).
  const jobs = deps.distributed?.jobs ?? (deps.delivery ? spoolJobsBackend(deps.delivery) : undefined);
  // A job's detail lists its webhooks (endpoint host, event, attempts, last status, next attempt).
  const webhooks = deps.webhooks;
  const extras = webhooks
    ? async (jobId: string, owner: Owner) => ({ webhooks: await webhooks.deliveriesFor(jobId, owner) })
    : undefined;
  if (jobs) app.use('/v1/jobs', createJobsRouter(jobs, undefined, extras));
  if (deps.webhooks) app.use('/v1/webhooks', createWebhooksRouter(deps.webhooks));
  // The console's audio player (job-audio.ts), beside the jobs router and under the same owner check.
  if (!deps.distributed?.jobs && deps.delivery) app.use('/v1/jobs', createJobAudioRouter(deps.delivery));
  // ROLE=worker takes no uploads: it serves its probes only.
  if (!deps.distributed || deps.distributed.delivery) {
    app.post(RECORDINGS_PATH, upload('drop-in'));
    app.post('/v1/recordings', upload('native'));
    app.post('/v1/transcode', upload('transcode'));
  }

  app.use((_req, res) => {
    res.status(404).json({ reason: Reason.InvalidData, message: 'Not found' });
  });
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const gw = toGatewayError(error);
    if (REFUSED_INPUT_CODES.has(gw.code)) metrics.refusedInput(gw);
    const log = (res.locals.log as Logger | undefined) ?? logger;
    if (gw.status >= 500 && gw.code !== 'UPSTREAM_UNREACHABLE' && gw.code !== 'UPSTREAM_TIMEOUT') {
      log.error({ err: gw.cause ?? gw, code: gw.code, detail: gw.detail }, gw.message);
    } else {
      // A failed login names the address it came from (as TRUST_PROXY lets Express read it).
      const client = LOGIN_CODES.has(gw.code) ? (req.ip ?? req.socket.remoteAddress) : undefined;
      log.info({ code: gw.code, status: gw.status, detail: gw.detail, path: req.path, client }, gw.message);
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // A request refused before its body was read (size, auth, overload, bad part): a small body is drained so that
    // a client still sending it can read the answer; a large or unsized one is not read on, the connection closes.
    if (!req.complete && !(Number(req.headers['content-length']) <= DRAIN_LIMIT_BYTES)) res.set('Connection', 'close');
    // A client that left (ABORTED, 499) and is somehow still there gets a plain 400.
    res
      .set(gw.headers)
      .status(gw.code === 'ABORTED' ? 400 : gw.status)
      .json(gw.toBody());
  });
  return app;
}

/** Refused credentials: logged with the client's address. */
const LOGIN_CODES = new Set(['UNAUTHORIZED', 'TOO_MANY_FAILED_LOGINS', 'FORBIDDEN']);

/** After the access control: only an admin key's caller (or no access control at all) reads what every tenant did. */
function operatorsOnly(_req: Request, res: Response, next: NextFunction): void {
  const caller = res.locals.caller as Caller | undefined;
  if (caller && !caller.admin) {
    next(new GatewayError('FORBIDDEN', 'Metrics are for operators: use an admin key (GATEWAY_ADMIN_KEYS)'));
    return;
  }
  next();
}

/**
 * Security headers on every answer (helmet): a strict Content-Security-Policy (the console has no inline script or
 * style: its build is files served from /ui/ only), no framing, no MIME sniffing, no Referer.
 */
function securityHeaders() {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:', 'blob:'],
        mediaSrc: ["'self'", 'blob:'],
        connectSrc: ["'self'"],
        fontSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    // The API is called from other origins' servers, never embedded: the cross-origin isolation headers add nothing.
    crossOriginEmbedderPolicy: false,
    // HSTS belongs to whoever terminates TLS (the gateway speaks plain HTTP behind it).
    strictTransportSecurity: false,
  });
}

/** Gateway refusals counted as unreadable, hostile or out-of-bounds input. */
const REFUSED_INPUT_CODES = new Set(['BAD_AUDIO', 'BAD_METADATA', 'TOO_LARGE', 'TOO_LONG', 'PROCESS_TIMEOUT']);

/** The outcome label of an answered upload, when the handler did not name it. */
function outcomeOf(mode: Mode, res: Response): string {
  if (!res.writableFinished) return 'aborted';
  const status = res.statusCode;
  if (status === 202) return 'accepted';
  if (status >= 200 && status < 300) return mode === 'transcode' ? 'transcoded' : 'delivered';
  if (status === 503) return 'busy';
  return status >= 500 ? 'failed' : 'refused';
}

function reconciliationOf(reconciler: ReadinessOfReconciliation): { available: boolean | null; reason?: string } {
  const reason = reconciler.unavailableReason();
  return { available: reconciler.available() ?? null, ...(reason === undefined ? {} : { reason }) };
}

/** How long one /readyz check is reused. */
const READY_CACHE_MS = 5000;

/** Largest unread request body drained after an early answer (see the error handler). */
const DRAIN_LIMIT_BYTES = 1024 * 1024;

/** The upload's size as declared, else as read so far (called once the body is in): its lane in the process slots. */
function uploadSize(req: Request): () => number {
  const base = req.socket.bytesRead;
  const declared = Number(req.headers['content-length']);
  return () => (Number.isFinite(declared) && declared >= 0 ? declared : req.socket.bytesRead - base);
}

async function openContext(
  req: Request,
  res: Response,
  config: Config,
  logger: Logger,
  shutdown: AbortSignal,
  tmpLedger: DiskLedger,
): Promise<RequestContext> {
  const incoming = req.get('x-request-id');
  const id = incoming && /^[\w.:-]{1,64}$/.test(incoming) ? incoming : randomUUID();
  res.set('X-Request-Id', id);
  const log = logger.child({ requestId: id });
  res.locals.log = log;
  const controller = new AbortController();
  // A hard close (after the shutdown grace) aborts it as well. Not AbortSignal.any(): on Node 20 each signal
  // combined with a long-lived one stays reachable from it, about 1 kB per request for the life of the process.
  const onShutdown = (): void => controller.abort(shutdown.reason);
  if (shutdown.aborted) onShutdown();
  else shutdown.addEventListener('abort', onShutdown, { once: true });
  // The client going away aborts everything still running for it (ffmpeg, the upstream POST).
  res.on('close', () => {
    shutdown.removeEventListener('abort', onShutdown);
    if (!res.writableFinished) controller.abort();
  });
  await mkdir(config.tmpDir, { recursive: true });
  const workDir = await mkdtemp(path.join(config.tmpDir, 'job-'));
  return { id, log, signal: controller.signal, workDir, disk: tmpLedger.scope() };
}

async function handleUpload(
  mode: Mode,
  req: Request,
  res: Response,
  ctx: RequestContext,
  deps: AppDeps & { media: MediaSettings },
  uploads: UploadDelivery | undefined,
): Promise<void> {
  const started = performance.now();
  const { config, media } = deps;
  let metadata: RecordingMetadata | undefined;
  const received: ReceivedUpload = await receiveUpload(req, {
    jobDir: ctx.workDir,
    limits: {
      ...DEFAULT_INTAKE_LIMITS,
      maxUploadBytes: config.limits.maxUploadBytes,
      idleTimeoutMs: config.uploads.idleTimeoutMs,
      minBytesPerSecond: config.uploads.minBytesPerSecond,
    },
    fileFields: ['attachment', REMOTE_ATTACHMENT],
    textFields: [...STEREO_FIELDS, CALLBACK_FIELD],
    onJsondata: (text) => {
      if (mode !== 'transcode') metadata = parseMetadata(text);
    },
    signal: ctx.signal,
  });
  const receivedMs = performance.now() - started;
  deps.metrics?.received(
    Object.values(received.files).reduce((sum, f) => sum + f.bytes, 0),
    receivedMs / 1000,
  );
  if (mode !== 'transcode') metadata ??= parseMetadata(received.jsondata);
  const attachment = received.files.attachment;
  if (!attachment) throw badRequest('The attachment part is missing');
  const audio = {
    path: attachment.path,
    originalName: attachment.originalName,
    extension: attachment.extension,
    sha256: attachment.sha256,
  };
  const remote = received.files[REMOTE_ATTACHMENT];
  const remoteAudio = remote
    ? { path: remote.path, originalName: remote.originalName, extension: remote.extension, sha256: remote.sha256 }
    : undefined;
  const stereoOptions = parseStereoOptions(
    received.fields,
    req.query as Record<string, unknown>,
    config.limits.maxDurationSeconds * 1000,
  );
  // The caller's own webhook (webhooks/callback.ts): refused (400) before any audio work when not allowed.
  const callbackUrl =
    mode === 'transcode'
      ? undefined
      : await takeCallbackUrl(
          received.fields,
          req.query as Record<string, unknown>,
          metadata,
          requestOwner(req, res).id,
          deps.webhooks?.callbackPolicy,
        );
  const prepareDeps = {
    bins: deps.bins,
    ...media,
    metrics: deps.metrics,
    // Under DELIVERY=wait the work happens in the spool, which swaps in its own reservation (delivery/service.ts).
    bounds: { ...media.bounds, budget: ctx.disk },
  };

  if (mode === 'transcode') {
    const prepared = await prepareCall(
      { attachment: audio, remoteAttachment: remoteAudio, options: stereoOptions },
      ctx.workDir,
      prepareDeps,
      ctx.signal,
    );
    deps.metrics?.prepared(prepared);
    res.locals.decision = decisionOf(prepared);
    logSummary(ctx, mode, prepared, undefined, receivedMs, started);
    res.status(200).set({
      'Content-Type': prepared.contentType,
      'Content-Length': String(prepared.bytes),
      'Content-Disposition': `attachment; filename="${prepared.filename.replace(/[^\x20-\x7e]|"/g, '_')}"`,
      'X-Audio-Duration': prepared.isoDuration,
      'X-Audio-Duration-Seconds': prepared.durationSeconds.toFixed(6),
      'X-Audio-Decision': prepared.plan.action,
    });
    // A client that stops reading the audio is cut off like a stalled upload.
    req.socket.setTimeout(config.uploads.idleTimeoutMs);
    await pipeline(createReadStream(prepared.path), res);
    return;
  }

  if (!uploads) throw new Error('no delivery for uploads');
  // Spooled (DELIVERY=wait), queued (QUEUE_URL) or kept in memory (DELIVERY=sync), then delivered here or later.
  const request = {
    mode,
    requestId: ctx.id,
    log: ctx.log,
    signal: ctx.signal,
    // DELIVERY=sync keeps nothing, so it never answers 202: Prefer is ignored there (delivery/direct.ts).
    preferAsync: prefersAsync(req),
    door: doorOf(req),
    metadata: metadata!,
    audio,
    remoteAudio,
    stereoOptions,
    callerAuthorization: forwardableAuthorization(req, res),
    owner: requestOwner(req, res).id,
    callbackUrl,
    prepare: prepareDeps,
    // From here on every line of this upload names its job too.
    onJob: (jobId: string) => {
      ctx.log = ctx.log.child({ jobId });
      res.locals.log = ctx.log;
    },
  };
  const outcome = await answerUpload(uploads, request, res, { started, receivedMs });
  if (outcome.kind === 'duplicate') {
    deps.metrics?.duplicate();
    res.locals.outcome = 'duplicate';
  }
  if (outcome.kind === 'done' || outcome.kind === 'answered') {
    const { result } = outcome;
    res.locals.decision = decisionOf(result.prepared);
    const answered = result.deliveries.some((d) => d.upstream);
    if (outcome.kind === 'done') {
      res.locals.outcome = outcome.outcome === 'permanent' ? 'upstream-refused' : outcome.outcome;
    } else {
      res.locals.outcome = result.complete ? 'delivered' : answered ? 'upstream-refused' : 'failed';
    }
    logSummary(ctx, mode, result.prepared, result, receivedMs, started);
  } else {
    const duplicateOf = outcome.kind === 'duplicate' ? outcome.first.id : undefined;
    ctx.log.info({ mode, outcome: outcome.kind, duplicateOf }, 'upload processed');
  }
}

function logSummary(
  ctx: RequestContext,
  mode: Mode,
  prepared: PreparedAudio,
  result: IngestResult | undefined,
  receivedMs: number,
  started: number,
): void {
  ctx.log.info(
    {
      mode,
      input: {
        format: prepared.probe.formatName,
        codec: prepared.probe.audio.codecName,
        channels: prepared.probe.audio.channels,
        sampleRate: prepared.probe.audio.sampleRate,
      },
      decision: prepared.plan.action,
      reasons: prepared.plan.reasons,
      output: { ...prepared.format, bytes: prepared.bytes },
      duration: prepared.isoDuration,
      upstreamStatus: result?.deliveries[0]?.upstream?.status ?? result?.deliveries[0]?.error?.status,
      partStatuses:
        result && result.deliveries.length > 1
          ? result.deliveries.map((d) => d.upstream?.status ?? d.error?.status)
          : undefined,
      parts: result?.deliveries.length,
      partsDelivered: result?.deliveries.filter((d) => d.delivered).length,
      oversize: result?.fitted.oversize.action,
      timings: {
        receiveMs: Math.round(receivedMs),
        probeMs: Math.round(prepared.timings.probeMs),
        processMs: Math.round(prepared.timings.processMs),
        measureMs: Math.round(prepared.timings.measureMs),
        deliverMs: result ? Math.round(result.deliverMs) : undefined,
        totalMs: Math.round(performance.now() - started),
      },
    },
    'upload processed',
  );
  if (prepared.truncated) {
    ctx.log.warn({ mode, truncated: prepared.truncated }, 'truncated: shorter than its container declares');
  }
  const level = prepared.level;
  if (level) ctx.log[level.warnings.length > 0 ? 'warn' : 'info']({ mode, level }, 'level normalization');
  // When and how loud each tone was, per channel; the report holds no key to log.
  const dtmf = prepared.dtmf;
  if (dtmf && dtmf.mode !== 'off') ctx.log[dtmf.warnings.length > 0 ? 'warn' : 'info']({ mode, dtmf }, 'DTMF');
  const stereo = prepared.stereo;
  if (stereo && stereo.warnings.length > 0) {
    ctx.log.warn(
      {
        mode,
        stereo: { source: stereo.source, mapping: stereo.mapping, analysis: stereo.analysis, check: stereo.check },
        warnings: stereo.warnings,
      },
      'stereo check',
    );
  }
}
