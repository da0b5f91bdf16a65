/**
 * zod schemas of the gateway's answers, for the OpenAPI document
 * (openapi.ts). The requests' schemas are the ones that validate them
 * (imagicle/schema.ts, pipeline/call-options.ts); these describe what comes back,
 * and the e2e tests check real answers against them.
 */
import { z } from 'zod';
import { JOB_DOORS, JOB_STATES } from '../delivery/job.js';
import { JOB_EVENT_TYPES } from '../delivery/job-events.js';

/** Every schema here that becomes a named component of the OpenAPI document. */
export const apiRegistry = z.registry<{ id: string; description?: string }>();

/** Imagicle's error body, which the gateway also uses for its own errors. */
export const errorBodySchema = z
  .object({
    reason: z
      .union([z.literal(0), z.literal(1), z.literal(2)])
      .describe('0 InvalidData, 1 InvalidRecordingMetadata, 2 InvalidRecordingAudioFile'),
    message: z.string(),
  })
  .register(apiRegistry, {
    id: 'ImagicleError',
    description: "Imagicle's error shape: the gateway's own refusals use it too",
  });

/** Imagicle's answer to an import: the new recording's id (a JSON string or number), or its error body. */
const upstreamBody = z.unknown().describe("Imagicle's answer body as it came (the new recording's id on success)");

const channelAnalysis = z.looseObject({
  channel: z.enum(['left', 'right']),
  party: z.string(),
  rmsDbfs: z.number().nullable(),
  peakDbfs: z.number().nullable(),
  speechShare: z.number(),
  silent: z.boolean(),
});

/** DTMF tones per channel (DTMF=detect|mask): when, how loud; never which key. */
const dtmfReportSchema = z
  .looseObject({
    mode: z.enum(['off', 'detect', 'mask']),
    decidedBy: z.string(),
    action: z.enum(['none', 'detected', 'masked']),
    tones: z.number().int(),
    channels: z.array(
      z.object({
        channel: z.enum(['left', 'right', 'mono']),
        party: z.enum(['local', 'remote']).optional(),
        tones: z.number().int(),
        spans: z.array(z.object({ startMs: z.number().int(), endMs: z.number().int(), levelDbfs: z.number() })),
      }),
    ),
    guardMs: z.number().int().optional(),
    mask: z.enum(['silence', 'tone']).optional(),
    reencoded: z.string().optional(),
    warnings: z.array(z.string()),
  })
  .register(apiRegistry, { id: 'DtmfReport' });

const stereoReportSchema = z
  .looseObject({
    source: z.enum(['two-legs', 'stereo-file', 'selected-channels', 'downmixed-channels', 'duplicated-mono']),
    mapping: z.looseObject({
      order: z.string(),
      profile: z.string(),
      decidedBy: z.string(),
      left: z.string(),
      right: z.string(),
    }),
    analysis: z
      .looseObject({
        windowMs: z.number(),
        activityThresholdDbfs: z.number(),
        channels: z.array(channelAnalysis),
        correlation: z.number().nullable(),
        levelDifferenceDb: z.number().nullable(),
        fakeStereo: z.boolean(),
        silentChannels: z.array(z.string()),
      })
      .optional(),
    warnings: z.array(z.string()),
  })
  .register(apiRegistry, { id: 'StereoReport' });

const partSummary = z.object({
  part: z.number().int(),
  of: z.number().int(),
  delivered: z.boolean(),
  attempted: z.boolean(),
  id: upstreamBody.optional(),
  status: z.number().int().optional(),
  startDateTime: z.string(),
  duration: z.string(),
  durationSeconds: z.number(),
  bytes: z.number().int(),
  filename: z.string(),
  error: upstreamBody.optional(),
});

export const reportSchema = z
  .object({
    requestId: z.string(),
    input: z.object({
      format: z.string(),
      formatLongName: z.string(),
      codec: z.string(),
      codecLongName: z.string().optional(),
      sampleRate: z.number(),
      channels: z.number().int(),
      channelLayout: z.string().optional(),
      bitsPerSample: z.number().int().optional(),
      durationSeconds: z.number().optional(),
      audioStreams: z.number().int(),
      hasVideo: z.boolean(),
      headerless: z.string().optional(),
    }),
    decision: z.object({
      action: z.enum(['pass-through', 'repair-header', 'transcode']),
      reasons: z.array(z.string()),
    }),
    stereo: stereoReportSchema.optional(),
    dtmf: dtmfReportSchema.optional(),
    output: z.looseObject({
      container: z.enum(['wav', 'mp3']),
      codec: z.string(),
      sampleRate: z.number().int(),
      channels: z.number().int(),
      contentType: z.string(),
      filename: z.string(),
      bytes: z.number().int(),
      samples: z.number().int(),
      duration: z.string(),
      durationSeconds: z.number(),
    }),
    oversize: z.looseObject({ action: z.string() }),
    metadata: z.record(z.string(), z.unknown()).optional().describe('The metadata sent to Imagicle for the first part'),
    upstream: z.object({
      status: z.number().int().optional(),
      id: upstreamBody.optional(),
      body: upstreamBody.optional(),
    }),
    complete: z.boolean(),
    parts: z.array(partSummary),
    timings: z.record(z.string(), z.number()),
    jobId: z.string().optional(),
    jobState: z.enum(JOB_STATES).optional(),
  })
  .register(apiRegistry, {
    id: 'Report',
    description: 'What came in, what was decided, what went out, what Imagicle said',
  });

const jobError = z.object({
  at: z.string(),
  part: z.number().int().optional(),
  status: z.number().int().optional(),
  code: z.string().optional(),
  message: z.string(),
  body: upstreamBody.optional(),
  ambiguous: z.boolean(),
});

const jobReportSchema = z
  .object({
    input: z.object({
      format: z.string(),
      codec: z.string().optional(),
      sampleRate: z.number().optional(),
      channels: z.number().int().optional(),
      bitsPerSample: z.number().int().optional(),
      durationSeconds: z.number().optional(),
      headerless: z.string().optional(),
    }),
    decision: z.object({ action: z.string(), reasons: z.array(z.string()) }),
    output: z.object({
      container: z.string(),
      codec: z.string(),
      sampleRate: z.number().int(),
      channels: z.number().int(),
      contentType: z.string(),
      bytes: z.number().int(),
      duration: z.string(),
      durationSeconds: z.number(),
    }),
    stereo: stereoReportSchema.optional(),
    dtmf: dtmfReportSchema.optional(),
  })
  .register(apiRegistry, { id: 'JobReport' });

export const jobSchema = z
  .object({
    jobId: z.string(),
    state: z.enum(JOB_STATES),
    held: z.boolean().describe('Failed because an attempt outcome is unknown: Imagicle may hold the recording'),
    door: z.enum(JOB_DOORS).describe('How the recording came: an upload, the import command, the watched folder'),
    owner: z.string().optional(),
    mode: z.enum(['drop-in', 'native']),
    async: z.boolean(),
    requestId: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
    expiresAt: z.string(),
    deliveredAt: z.string().optional(),
    failedAt: z.string().optional(),
    nextAttemptAt: z.string().optional(),
    attempts: z.number().int(),
    possibleDuplicates: z.number().int(),
    pbxCallId: z.string().nullable().optional(),
    startDateTime: z.string(),
    metadata: z.object({
      startDateTime: z.string(),
      direction: z.number().int().optional(),
      localParty: z.object({ username: z.string().optional(), phoneNumber: z.string().optional() }),
      remoteParty: z.object({ phoneNumber: z.string().optional() }),
      notes: z.string().nullable().optional(),
    }),
    originalName: z.string().optional(),
    decision: z.string().optional(),
    lastError: jobError.optional(),
    upstreamIds: z.array(upstreamBody),
    parts: z.array(
      z.object({
        part: z.number().int(),
        of: z.number().int(),
        state: z.enum(['pending', 'delivering', 'delivered']),
        attempts: z.number().int(),
        status: z.number().int().optional(),
        id: upstreamBody.optional(),
        imagicleId: z.string().optional(),
        reconciled: z.boolean().describe('Found in Imagicle by reconciliation: not sent again'),
        duplicateIds: z.array(z.string()).optional(),
        deliveredAt: z.string().optional(),
        bytes: z.number().int(),
        duration: z.string(),
        filename: z.string(),
      }),
    ),
    report: jobReportSchema.optional(),
    history: z.array(
      z.object({
        at: z.string(),
        part: z.number().int(),
        attempt: z.number().int(),
        verdict: z.string(),
        status: z.number().int().optional(),
        code: z.string().optional(),
        answer: upstreamBody.optional(),
        ms: z.number(),
      }),
    ),
    events: z.array(z.object({ id: z.string(), type: z.enum(JOB_EVENT_TYPES), at: z.string() })),
    webhooks: z
      .array(z.looseObject({}))
      .optional()
      .describe('Its webhooks (when WEBHOOKS is set): endpoint host, event, attempts, last status, next attempt'),
    location: z.string(),
    duplicateOf: z.string().optional(),
  })
  .register(apiRegistry, { id: 'Job', description: 'A spooled job (DELIVERY=wait)' });

export const jobListSchema = z
  .object({
    jobs: z.array(jobSchema).describe('Newest first'),
    count: z.number().int(),
    nextCursor: z.string().nullable().describe('Pass as cursor= for the next page; null on the last one'),
    counts: z
      .record(z.enum(JOB_STATES), z.number().int())
      .describe('The caller’s jobs per state, other filters applied'),
    spoolBytes: z.number().int(),
  })
  .register(apiRegistry, { id: 'JobList' });

export const acceptedSchema = z
  .object({
    jobId: z.string(),
    state: z.enum(JOB_STATES),
    location: z.string(),
    message: z.string(),
    nextAttemptAt: z.string().optional(),
    lastError: jobError.optional(),
  })
  .register(apiRegistry, { id: 'Accepted', description: 'Spooled, not delivered yet: follow Location' });

export const partsAnswerSchema = z.object({ parts: z.array(partSummary) }).register(apiRegistry, {
  id: 'PartsAnswer',
  description: 'A split recording delivered as several (drop-in endpoint)',
});

export const healthSchema = z
  .object({ status: z.literal('ok'), uptimeSeconds: z.number() })
  .register(apiRegistry, { id: 'Health' });

export const readySchema = z
  .object({
    status: z.enum(['ready', 'not ready']),
    ffmpeg: z.looseObject({ ok: z.boolean(), problems: z.array(z.string()) }),
    // Imagicle's address is not shown to callers (it is in the startup log).
    upstream: z.looseObject({ reachable: z.boolean(), status: z.number().optional() }),
    // The distributed mode (QUEUE_URL) adds its own checks.
    redis: z.looseObject({ ok: z.boolean() }).optional(),
    blobDir: z.looseObject({ ok: z.boolean() }).optional(),
    // Issue 25: whether the gateway can ask Imagicle before a re-send (null: not known yet; never affects status).
    reconciliation: z.object({ available: z.boolean().nullable(), reason: z.string().optional() }).optional(),
  })
  .register(apiRegistry, { id: 'Readiness' });

/** GET /metrics/status: for operators only (free space helps whoever would fill a disk; the folder is theirs). */
export const operatorStatusSchema = z
  .object({
    // Free space of the tmp, spool and blob folders.
    disk: z
      .record(z.string(), z.object({ freeBytes: z.number().int(), totalBytes: z.number().int() }))
      .describe('Free space per folder the gateway writes to: tmp (TMP_DIR), spool (SPOOL_DIR), blob (BLOB_DIR)'),
    // WATCH_DIR under serve: the watched folder's state (import/watch.ts).
    watch: z
      .object({
        waiting: z.number().int().describe('Files in the folder not taken yet'),
        inProgress: z.number().int().describe('Taken and not finished (converting, or its job not ended)'),
        retrying: z.number().int().describe('Left in place after an outage, to be tried again'),
        taken: z.number().int().describe('Since the gateway started'),
        delivered: z.number().int().describe('Moved to done/ since the gateway started'),
        failed: z.number().int().describe('Moved to failed/ since the gateway started'),
        lastScanAt: z.string().optional(),
      })
      .optional(),
  })
  .register(apiRegistry, {
    id: 'OperatorStatus',
    description: "The console overview's free space and watched folder (admin keys, like /metrics)",
  });

export const ratesSchema = z
  .object({
    bucketSeconds: z.number().int().describe('300: five minutes'),
    from: z.string().describe('Start of the oldest bucket (ISO 8601); the last bucket is the one under way'),
    series: z.object({
      uploads: z.array(z.number().int()).describe('Uploads answered, every endpoint'),
      deliveries: z.array(z.number().int()).describe('Recordings delivered (every door)'),
      failures: z.array(z.number().int()).describe('Recordings failed for good or held (every door)'),
    }),
  })
  .register(apiRegistry, { id: 'Rates', description: 'The last hour per 5 minutes (twelve counts, oldest first)' });
