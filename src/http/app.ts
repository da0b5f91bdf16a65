/**
 * The express app: routes, the per-request job folder and abort signal, and
 * the single error handler that answers in Imagicle's error shape.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { badRequest, GatewayError, Reason, toGatewayError } from '../errors.js';
import { checkTools, type FfmpegBinaries } from '../media/ffmpeg.js';
import type { UpstreamClient } from '../imagicle/client.js';
import { RECORDINGS_PATH } from '../imagicle/client.js';
import { ingest, type Deliver, type IngestResult } from '../pipeline/ingest.js';
import { parseMetadata } from '../pipeline/metadata.js';
import { prepareAudio, type PreparedAudio } from '../pipeline/prepare.js';
import { DEFAULT_INTAKE_LIMITS, receiveUpload, type ReceivedUpload } from './intake.js';
import { buildReport } from './report.js';
import type { RecordingMetadata } from '../imagicle/schema.js';

export interface AppDeps {
  config: Config;
  bins: FfmpegBinaries;
  upstream: UpstreamClient;
  logger: Logger;
  /** Delivery strategy; defaults to one direct POST. */
  deliver?: Deliver;
}

type Mode = 'drop-in' | 'native' | 'transcode';

interface RequestContext {
  id: string;
  log: Logger;
  signal: AbortSignal;
  workDir: string;
}

export function createApp(deps: AppDeps): express.Express {
  const { config, logger } = deps;
  const deliver: Deliver = deps.deliver ?? ((upload) => deps.upstream.postRecording(upload));
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', uptimeSeconds: Math.round(process.uptime()) });
  });

  app.get('/readyz', async (_req, res) => {
    const [tools, upstream] = await Promise.all([checkTools(deps.bins), deps.upstream.ping()]);
    const ready = tools.ok && upstream.reachable;
    res.status(ready ? 200 : 503).json({
      status: ready ? 'ready' : 'not ready',
      ffmpeg: { ok: tools.ok, ffmpeg: tools.ffmpegVersion, ffprobe: tools.ffprobeVersion, problems: tools.problems },
      upstream: { url: deps.upstream.url, reachable: upstream.reachable, status: upstream.status, error: upstream.error },
    });
  });

  const upload = (mode: Mode) => async (req: Request, res: Response) => {
    const ctx = await openContext(req, res, config, logger);
    try {
      await handleUpload(mode, req, res, ctx, deps, deliver);
    } finally {
      await rm(ctx.workDir, { recursive: true, force: true });
    }
  };
  app.post(RECORDINGS_PATH, upload('drop-in'));
  app.post('/v1/recordings', upload('native'));
  app.post('/v1/transcode', upload('transcode'));

  app.use((_req, res) => {
    res.status(404).json({ reason: Reason.InvalidData, message: 'Not found' });
  });
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const gw = toGatewayError(error);
    const log = (res.locals.log as Logger | undefined) ?? logger;
    if (gw.status >= 500 && gw.code !== 'UPSTREAM_UNREACHABLE' && gw.code !== 'UPSTREAM_TIMEOUT') {
      log.error({ err: gw.cause ?? gw, code: gw.code, detail: gw.detail }, gw.message);
    } else {
      log.info({ code: gw.code, status: gw.status, detail: gw.detail, path: req.path }, gw.message);
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.set(gw.headers).status(gw.status === 499 ? 400 : gw.status).json(gw.toBody());
  });
  return app;
}

async function openContext(req: Request, res: Response, config: Config, logger: Logger): Promise<RequestContext> {
  const incoming = req.get('x-request-id');
  const id = incoming && /^[\w.:-]{1,64}$/.test(incoming) ? incoming : randomUUID();
  res.set('X-Request-Id', id);
  const log = logger.child({ requestId: id });
  res.locals.log = log;
  const controller = new AbortController();
  // The client going away aborts everything still running for it (ffmpeg, the upstream POST).
  res.on('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  await mkdir(config.tmpDir, { recursive: true });
  const workDir = await mkdtemp(path.join(config.tmpDir, 'job-'));
  return { id, log, signal: controller.signal, workDir };
}

async function handleUpload(mode: Mode, req: Request, res: Response, ctx: RequestContext, deps: AppDeps, deliver: Deliver): Promise<void> {
  const started = performance.now();
  const { config } = deps;
  let metadata: RecordingMetadata | undefined;
  const received: ReceivedUpload = await receiveUpload(req, {
    jobDir: ctx.workDir,
    limits: { ...DEFAULT_INTAKE_LIMITS, maxUploadBytes: config.limits.maxUploadBytes },
    fileFields: ['attachment'],
    textFields: [],
    onJsondata: (text) => {
      if (mode !== 'transcode') metadata = parseMetadata(text);
    },
    signal: ctx.signal,
  });
  const receivedMs = performance.now() - started;
  if (mode !== 'transcode') metadata ??= parseMetadata(received.jsondata);
  const attachment = received.files.attachment;
  if (!attachment) throw badRequest('The attachment part is missing');
  const audio = { path: attachment.path, originalName: attachment.originalName, extension: attachment.extension };
  const prepareDeps = {
    bins: deps.bins,
    output: config.output,
    limits: {
      maxDurationSeconds: config.limits.maxDurationSeconds,
      maxChannelsIn: config.limits.maxChannelsIn,
      processTimeoutMs: config.limits.processTimeoutMs,
    },
  };

  if (mode === 'transcode') {
    const prepared = await prepareAudio(audio, ctx.workDir, prepareDeps, ctx.signal);
    logSummary(ctx, mode, prepared, undefined, receivedMs, started);
    res.status(200).set({
      'Content-Type': prepared.contentType,
      'Content-Length': String(prepared.bytes),
      'Content-Disposition': `attachment; filename="${prepared.filename.replace(/[^\x20-\x7e]|"/g, '_')}"`,
      'X-Audio-Duration': prepared.isoDuration,
      'X-Audio-Duration-Seconds': prepared.durationSeconds.toFixed(6),
      'X-Audio-Decision': prepared.plan.action,
    });
    await pipeline(createReadStream(prepared.path), res);
    return;
  }

  const result = await ingest(
    {
      metadata: metadata!,
      audio,
      workDir: ctx.workDir,
      callerAuthorization: req.get('authorization'),
      signal: ctx.signal,
    },
    { ...prepareDeps, deliver, maxPartBytes: config.limits.maxPartBytes },
  );
  logSummary(ctx, mode, result.prepared, result, receivedMs, started);
  if (mode === 'drop-in') {
    // Imagicle's answer, status and body, goes back unchanged.
    res.status(result.upstream.status);
    if (result.upstream.contentType) res.set('Content-Type', result.upstream.contentType);
    res.send(result.upstream.body);
    return;
  }
  const ok = result.upstream.status >= 200 && result.upstream.status < 300;
  res.status(ok ? 201 : result.upstream.status).json(buildReport(ctx.id, result, { receivedMs, totalMs: performance.now() - started }));
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
      input: { format: prepared.probe.formatName, codec: prepared.probe.audio.codecName, channels: prepared.probe.audio.channels, sampleRate: prepared.probe.audio.sampleRate },
      decision: prepared.plan.action,
      reasons: prepared.plan.reasons,
      output: { ...prepared.format, bytes: prepared.bytes },
      duration: prepared.isoDuration,
      upstreamStatus: result?.upstream.status,
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
}

export { GatewayError };
