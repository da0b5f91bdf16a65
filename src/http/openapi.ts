/**
 * The OpenAPI 3.1 document (GET /openapi.json), generated from the zod
 * schemas: the requests' from the ones that validate them (the metadata in
 * `jsondata`, the stereo options), the answers' from api-schemas.ts.
 * Built once per app, for its configuration (limits appear in it).
 */
import type { RequestHandler } from 'express';
import { z } from 'zod';
import type { Config } from '../config.js';
import { recordingMetadataSchema } from '../imagicle/schema.js';
import { RECORDINGS_PATH } from '../imagicle/client.js';
import { JOB_DOORS, JOB_STATES } from '../delivery/job.js';
import { CONTENT_TYPE } from '../media/plan.js';
import { stereoOptionsSchema, REMOTE_ATTACHMENT } from '../pipeline/call-options.js';
import {
  acceptedSchema,
  apiRegistry,
  errorBodySchema,
  healthSchema,
  jobListSchema,
  jobSchema,
  partsAnswerSchema,
  ratesSchema,
  operatorStatusSchema,
  readySchema,
  reportSchema,
} from './api-schemas.js';
import { webhookDocument } from '../webhooks/api-schemas.js';

type JsonObject = Record<string, unknown>;

const ref = (id: string): JsonObject => ({ $ref: `#/components/schemas/${id}` });
const json = (schema: JsonObject, description: string): JsonObject => ({
  description,
  content: { 'application/json': { schema } },
});

/** Imagicle's error answers, with what each status means here. */
function errors(statuses: Record<number, string>): Record<string, JsonObject> {
  return Object.fromEntries(
    Object.entries(statuses).map(([status, text]) => [status, json(ref('ImagicleError'), text)]),
  );
}

const UPLOAD_ERRORS = {
  400: 'Bad form, metadata (reason 1) or audio (reason 2); or Imagicle refused it (its answer, passed through)',
  401: 'No or wrong gateway credentials (WWW-Authenticate says which schemes)',
  408: 'The upload stalled or was too slow',
  413: 'The upload is larger than MAX_UPLOAD_BYTES, or the recording too long (reason 2)',
  429: 'Too many failed logins from this address (AUTH_FAIL_LIMIT): retry after Retry-After',
  502: 'Imagicle unreachable, or it answered a redirect',
  503: 'Overloaded or the spool is full: retry after Retry-After',
  504: 'Imagicle did not answer in time',
  507: 'The disk is full, or the conversion cannot reserve its space now: retry after Retry-After',
};

/** What every authenticated operation can answer besides its own statuses. */
const AUTH_ERRORS = { 401: UPLOAD_ERRORS[401], 429: UPLOAD_ERRORS[429] };

export function buildOpenApi(config: Config): JsonObject {
  const components = z.toJSONSchema(apiRegistry, {
    target: 'draft-2020-12',
    io: 'input',
    unrepresentable: 'any',
    uri: (id) => `#/components/schemas/${id}`,
  }).schemas as Record<string, JsonObject>;
  const metadata = z.toJSONSchema(recordingMetadataSchema, {
    target: 'draft-2020-12',
    io: 'input',
    unrepresentable: 'any',
  }) as JsonObject;
  delete metadata.$schema;
  // Components are addressed by their place in the document; a fragment-only $id is not valid JSON Schema 2020-12.
  for (const schema of Object.values(components)) {
    delete schema.$schema;
    delete schema.$id;
  }
  const stereo = z.toJSONSchema(stereoOptionsSchema(config.limits.maxDurationSeconds * 1000), {
    target: 'draft-2020-12',
    io: 'input',
    unrepresentable: 'any',
  }) as { properties: Record<string, JsonObject> };

  // `format: binary` beside contentMediaType: OpenAPI 3.1 reads the latter, code generators type the part as a file
  // (Blob, bytes) by the former.
  const audio = (description: string): JsonObject => ({
    type: 'string',
    format: 'binary',
    contentMediaType: 'application/octet-stream',
    description,
  });
  const binary = (type: string): JsonObject => ({
    schema: { type: 'string', format: 'binary', contentMediaType: type },
  });
  const form = (withMetadata: boolean): JsonObject => ({
    required: true,
    content: {
      'multipart/form-data': {
        schema: {
          type: 'object',
          required: withMetadata ? ['jsondata', 'attachment'] : ['attachment'],
          properties: {
            ...(withMetadata
              ? {
                  jsondata: {
                    type: 'string',
                    contentMediaType: 'application/json',
                    contentSchema: ref('RecordingMetadata'),
                    description: 'The recording metadata (JSON). `duration` is optional: it is measured',
                  },
                }
              : {}),
            attachment: audio(
              "The audio, in any supported codec (the file name's extension is a hint for headerless " +
                'telephony formats)',
            ),
            [REMOTE_ATTACHMENT]: audio(
              "The remote party's leg, merged with `attachment` into stereo (two-leg uploads)",
            ),
            ...stereo.properties,
          },
        },
        encoding: {
          jsondata: { contentType: 'application/json, text/plain' },
          attachment: { contentType: 'application/octet-stream, audio/*' },
        },
      },
    },
  });
  const stereoQuery = Object.entries(stereo.properties).map(([name, schema]) => ({
    name,
    in: 'query',
    required: false,
    schema,
    description:
      "A stereo option, for clients that can only send the two parts of Imagicle's form " +
      '(the form field wins when both agree)',
  }));
  const prefer = {
    name: 'Prefer',
    in: 'header',
    required: false,
    schema: { type: 'string', examples: ['respond-async'] },
    description: 'respond-async: answer 202 once spooled (DELIVERY=wait)',
  };
  const door = {
    name: 'X-Gateway-Door',
    in: 'header',
    required: false,
    schema: { type: 'string', enum: ['http', 'import', 'watch'] },
    description:
      "How the recording reached the caller, shown as the job's door (jobs API, console): `import` and `watch` " +
      'with --gateway; absent: http',
  };
  const requestId = {
    name: 'X-Request-Id',
    in: 'header',
    required: false,
    schema: { type: 'string', pattern: '^[\\w.:-]{1,64}$' },
    description: 'Kept and echoed when sane; otherwise a new one is made',
  };
  const jobId = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };
  const secured = [{ apiKey: [] }, { bearer: [] }, { basic: [] }];
  // Webhooks (issue 23): what the gateway sends (OpenAPI 3.1 `webhooks`) and /v1/webhooks.
  const hooks = webhookDocument(ref, json, errors);
  const accepted = json(ref('Accepted'), 'Spooled, to be delivered in the background (DELIVERY=wait): follow Location');

  return {
    openapi: '3.1.0',
    info: {
      title: 'Imagicle audio gateway',
      version: '1',
      description:
        "Normalises and transcodes call recordings for Imagicle Call Recording. Errors use Imagicle's shape: " +
        '{reason, message} with reason 0 InvalidData, 1 InvalidRecordingMetadata, 2 InvalidRecordingAudioFile.',
    },
    // Relative: the document is served by the gateway it describes, wherever that listens.
    servers: [{ url: '/', description: 'This gateway' }],
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    security: secured,
    paths: {
      [RECORDINGS_PATH]: {
        post: {
          operationId: 'importRecording',
          summary: "Drop-in replacement of Imagicle's import: the same form, any audio",
          parameters: [...stereoQuery, prefer, door, requestId],
          requestBody: form(true),
          responses: {
            200: json({}, "Imagicle's answer, as it came (or a duplicate's first answer)"),
            201: json(
              { anyOf: [{ type: ['string', 'number', 'object', 'array', 'boolean', 'null'] }, ref('PartsAnswer')] },
              "Imagicle's answer (the new recording's id, as it came); a split recording: every part",
            ),
            202: accepted,
            409: json(
              ref('ImagicleError'),
              "A duplicate of an earlier upload (DEDUP_ANSWER=conflict), or Imagicle's own 409",
            ),
            ...errors(UPLOAD_ERRORS),
            default: json({}, "Imagicle's own answer to the import, its status and body as they came"),
          },
        },
      },
      '/v1/recordings': {
        post: {
          operationId: 'ingestRecording',
          summary: 'Native import: the same form plus options; answers a report',
          parameters: [...stereoQuery, prefer, door, requestId],
          requestBody: form(true),
          responses: {
            200: json(ref('Job'), 'A duplicate of an earlier, delivered upload: its job'),
            201: json(ref('Report'), 'Delivered'),
            202: accepted,
            409: json(ref('ImagicleError'), 'A duplicate (DEDUP_ANSWER=conflict)'),
            ...errors(UPLOAD_ERRORS),
            default: json(
              { anyOf: [ref('Report'), ref('ImagicleError')] },
              'Imagicle refused or failed the import: its status, with the report ' +
                "(upstream holds Imagicle's answer; a held job is named by X-Job-Id)",
            ),
          },
        },
      },
      '/v1/transcode': {
        post: {
          operationId: 'transcode',
          summary: 'Converts and answers the compliant audio itself (no delivery)',
          parameters: [...stereoQuery, requestId],
          requestBody: form(false),
          responses: {
            200: {
              description: 'The audio Imagicle would receive',
              headers: {
                'X-Audio-Duration': { schema: { type: 'string' }, description: 'ISO 8601, measured' },
                'X-Audio-Duration-Seconds': { schema: { type: 'string' } },
                'X-Audio-Decision': {
                  schema: { type: 'string', enum: ['pass-through', 'repair-header', 'transcode'] },
                },
              },
              content: Object.fromEntries(Object.values(CONTENT_TYPE).map((type) => [type, binary(type)])),
            },
            ...errors({
              400: UPLOAD_ERRORS[400],
              ...AUTH_ERRORS,
              408: UPLOAD_ERRORS[408],
              413: UPLOAD_ERRORS[413],
              503: UPLOAD_ERRORS[503],
              507: UPLOAD_ERRORS[507],
            }),
          },
        },
      },
      '/v1/jobs': {
        get: {
          operationId: 'listJobs',
          summary: 'A page of the caller’s jobs, newest first, with counts per state',
          parameters: [
            {
              name: 'limit',
              in: 'query',
              required: false,
              schema: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
            },
            {
              name: 'cursor',
              in: 'query',
              required: false,
              schema: { type: 'string' },
              description: 'nextCursor of the previous page',
            },
            { name: 'state', in: 'query', required: false, schema: { type: 'string', enum: [...JOB_STATES] } },
            { name: 'door', in: 'query', required: false, schema: { type: 'string', enum: [...JOB_DOORS] } },
            {
              name: 'q',
              in: 'query',
              required: false,
              schema: { type: 'string' },
              description: 'Exact pbxCallId, phone number (either party), username or Imagicle id',
            },
            {
              name: 'pbxCallId',
              in: 'query',
              required: false,
              deprecated: true,
              schema: { type: 'string' },
              description: 'Same as q (kept for existing callers)',
            },
            {
              name: 'from',
              in: 'query',
              required: false,
              schema: { type: 'string', format: 'date-time' },
              description: 'Recordings that started at or after this instant',
            },
            {
              name: 'to',
              in: 'query',
              required: false,
              schema: { type: 'string', format: 'date-time' },
              description: 'Recordings that started at or before this instant',
            },
          ],
          responses: {
            200: json(ref('JobList'), 'The jobs'),
            ...errors({ 400: 'Unknown state, door or a bad cursor', ...AUTH_ERRORS }),
          },
        },
      },
      '/v1/jobs/{id}': {
        get: {
          operationId: 'getJob',
          summary: 'One job: its metadata, decision, parts and attempts',
          parameters: [jobId],
          responses: { 200: json(ref('Job'), 'The job'), ...errors({ ...AUTH_ERRORS, 404: 'No such job' }) },
        },
        delete: {
          operationId: 'deleteJob',
          summary: 'Forgets a job and deletes its files (it will not be delivered)',
          parameters: [jobId],
          responses: {
            204: { description: 'Forgotten, its files deleted' },
            ...errors({ ...AUTH_ERRORS, 404: 'No such job', 409: 'Being delivered right now' }),
          },
        },
      },
      '/v1/jobs/{id}/retry': {
        post: {
          operationId: 'retryJob',
          summary: 'Puts a failed (or held) job back in the queue',
          parameters: [jobId],
          responses: {
            202: json(ref('Job'), 'Back in the queue'),
            ...errors({ ...AUTH_ERRORS, 404: 'No such job', 409: 'Not failed, or being worked on' }),
          },
        },
      },
      '/v1/jobs/{id}/waveform/{channel}.png': {
        get: {
          operationId: 'jobWaveform',
          summary: "A waveform picture of one channel of the job's output (drawn on demand, cached)",
          parameters: [
            jobId,
            {
              name: 'channel',
              in: 'path',
              required: true,
              schema: { type: 'integer', minimum: 0 },
              description: '0-based',
            },
          ],
          responses: {
            200: {
              description: 'PNG',
              content: { 'image/png': binary('image/png') },
            },
            ...errors({
              ...AUTH_ERRORS,
              404: 'No such job or channel, or not converted yet',
              410: 'The audio is no longer kept',
              503: UPLOAD_ERRORS[503],
            }),
          },
        },
      },
      '/v1/jobs/{id}/audio/output': {
        get: {
          operationId: 'jobOutputAudio',
          summary: "A converted part of the job's output, while the gateway holds it (range requests)",
          parameters: [
            jobId,
            { name: 'part', in: 'query', required: false, schema: { type: 'integer', minimum: 1, default: 1 } },
            { name: 'Range', in: 'header', required: false, schema: { type: 'string' } },
          ],
          responses: {
            200: {
              description: 'The audio',
              content: Object.fromEntries(Object.values(CONTENT_TYPE).map((t) => [t, binary(t)])),
            },
            206: {
              description: 'The requested range',
              content: Object.fromEntries(Object.values(CONTENT_TYPE).map((t) => [t, binary(t)])),
            },
            ...errors({
              ...AUTH_ERRORS,
              404: 'No such job or part, or its audio was delivered and deleted (the message says which)',
            }),
            416: { description: 'The range is outside the file' },
          },
        },
      },
      '/v1/jobs/{id}/audio/input': {
        get: {
          operationId: 'jobInputAudio',
          summary: 'The upload as it came, while the gateway holds it (range requests)',
          parameters: [jobId, { name: 'Range', in: 'header', required: false, schema: { type: 'string' } }],
          responses: {
            200: {
              description: 'The upload',
              content: { 'audio/*': binary('audio/*'), 'application/octet-stream': binary('application/octet-stream') },
            },
            206: { description: 'The requested range', content: { 'audio/*': binary('audio/*') } },
            ...errors({ ...AUTH_ERRORS, 404: 'No such job, or its upload is no longer kept' }),
            416: { description: 'The range is outside the file' },
          },
        },
      },
      '/metrics': {
        get: {
          operationId: 'metrics',
          summary:
            'Prometheus metrics, for operators: an admin key (GATEWAY_ADMIN_KEYS), or none with METRICS_PUBLIC=true ' +
            '(METRICS_PORT serves them on a localhost listener of their own)',
          responses: {
            200: { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } },
            ...errors({
              401: UPLOAD_ERRORS[401],
              403: 'A tenant key: metrics are for admin keys',
              429: 'Too many failed logins from this address: retry after Retry-After',
            }),
          },
        },
      },
      '/metrics/rates': {
        get: {
          operationId: 'rates',
          summary: "The last hour's uploads, deliveries and failures per 5 minutes (the console's overview)",
          description: 'Kept by this process since it started; same access as /metrics.',
          responses: {
            200: json(ref('Rates'), 'Twelve 5-minute buckets per series, oldest first'),
            ...errors({
              401: UPLOAD_ERRORS[401],
              403: 'A tenant key: rates are for admin keys',
              429: 'Too many failed logins from this address: retry after Retry-After',
            }),
          },
        },
      },
      '/metrics/status': {
        get: {
          operationId: 'operatorStatus',
          summary: "Free space of the gateway's folders and the watched folder's state (the console's overview)",
          description: 'Same access as /metrics: free space is not for the world to see.',
          responses: {
            200: json(ref('OperatorStatus'), 'Free space per folder; `watch` with WATCH_DIR under serve'),
            ...errors({
              401: UPLOAD_ERRORS[401],
              403: 'A tenant key: the status is for admin keys',
              429: 'Too many failed logins from this address: retry after Retry-After',
            }),
          },
        },
      },
      '/healthz': {
        get: {
          operationId: 'health',
          summary: 'Liveness: the process answers',
          security: [],
          responses: { 200: json(ref('Health'), 'Alive') },
        },
      },
      '/readyz': {
        get: {
          operationId: 'ready',
          summary: 'Readiness: ffmpeg usable and Imagicle reachable',
          security: [],
          responses: {
            200: json(ref('Readiness'), 'ffmpeg usable and Imagicle reachable'),
            503: json(ref('Readiness'), 'Not ready'),
          },
        },
      },
      '/openapi.json': {
        get: {
          operationId: 'openapi',
          summary: 'This document (OpenAPI 3.1)',
          security: [],
          responses: { 200: json({ type: 'object' }, 'This document') },
        },
      },
      ...hooks.paths,
    },
    webhooks: hooks.webhooks,
    components: {
      schemas: { ...components, RecordingMetadata: metadata },
      securitySchemes: {
        apiKey: { type: 'apiKey', in: 'header', name: 'X-Api-Key', description: 'A key from GATEWAY_API_KEYS' },
        bearer: { type: 'http', scheme: 'bearer', description: 'A key from GATEWAY_API_KEYS' },
        basic: { type: 'http', scheme: 'basic', description: 'A user from GATEWAY_BASIC_USERS' },
      },
    },
  };
}

// The schemas are named here so that an unused import is a lint error, not a silently missing component.
void [
  acceptedSchema,
  errorBodySchema,
  healthSchema,
  jobListSchema,
  jobSchema,
  partsAnswerSchema,
  ratesSchema,
  operatorStatusSchema,
  readySchema,
  reportSchema,
];

export function serveOpenApi(config: Config): RequestHandler {
  let document: string | undefined;
  return (_req, res) => {
    document ??= JSON.stringify(buildOpenApi(config));
    res.type('application/json').send(document);
  };
}
