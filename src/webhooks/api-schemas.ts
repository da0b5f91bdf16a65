/**
 * zod schemas of what the webhooks send and answer, for the OpenAPI
 * document's `webhooks` and /v1/webhooks paths (openapi.ts). The tests parse
 * real bodies with them, so the document cannot drift from what is sent.
 */
import { z } from 'zod';
import { JOB_EVENT_TYPES } from '../delivery/job-events.js';
import { JOB_STATES } from '../delivery/job.js';
import { apiRegistry } from '../http/api-schemas.js';
import { DELIVERY_STATES } from './delivery.js';

const instant = z.string().describe('ISO 8601 instant');

export const webhookEventSchema = z
  .object({
    type: z.enum(JOB_EVENT_TYPES),
    timestamp: instant.describe('When the event happened (the state change)'),
    data: z.object({
      jobId: z.string(),
      state: z.enum(JOB_STATES),
      pbxCallId: z.string().nullable(),
      startDateTime: z.string().describe("The call's start, as the source gave it"),
      owner: z.string().describe('The key id that sent the recording (key:<12 hex>, basic:<user>, anonymous)'),
      parts: z.array(
        z.object({
          part: z.number().int(),
          of: z.number().int(),
          state: z.enum(['pending', 'delivering', 'delivered']),
          imagicleId: z.unknown().describe("Imagicle's id of the recording made from this part; null until delivered"),
          duration: z.string().describe('ISO 8601 duration, measured to the sample'),
          bytes: z.number().int(),
          deliveredAt: instant.nullable(),
        }),
      ),
      decision: z
        .object({ action: z.string(), reasons: z.array(z.string()) })
        .nullable()
        .describe('pass-through, repair-header or transcode, and why'),
      attempts: z.number().int(),
      possibleDuplicates: z.number().int(),
      error: z
        .object({
          at: instant,
          part: z.number().int().nullable(),
          status: z.number().int().nullable(),
          code: z.string().nullable(),
          message: z.string(),
          ambiguous: z.boolean().describe('Imagicle may have imported it (held for an operator)'),
          imagicle: z.unknown().describe("Imagicle's answer, as it came (null: no answer)"),
        })
        .nullable()
        .describe("Why it failed, is held or is retried: Imagicle's answer or the gateway's reason"),
      nextAttemptAt: instant.nullable().describe('recording.retrying: when the gateway tries again'),
      createdAt: instant,
      deliveredAt: instant.nullable(),
      failedAt: instant.nullable(),
      links: z.object({ job: z.string().describe('The job in the jobs API (GET with the same credentials)') }),
    }),
  })
  .register(apiRegistry, {
    id: 'WebhookEvent',
    description:
      'The body of every webhook. Headers (Standard Webhooks): webhook-id (stable across retries: drop ' +
      'duplicates), webhook-timestamp, webhook-signature (v1,<base64 HMAC-SHA256>, one per secret)',
  });

// Registered for the OpenAPI document (referenced there by id).
z.object({
  type: z.literal('ping'),
  timestamp: instant,
  data: z.object({ owner: z.string(), message: z.string() }),
}).register(apiRegistry, { id: 'WebhookPing' });

const webhookDeliverySchema = z
  .object({
    id: z.string(),
    webhookId: z.string(),
    event: z.enum([...JOB_EVENT_TYPES, 'ping']),
    endpoint: z.string().describe("The endpoint's host only"),
    kind: z.enum(['configured', 'callback']),
    state: z.enum(DELIVERY_STATES),
    attempts: z.number().int(),
    lastStatus: z.number().int().optional(),
    lastError: z.string().optional(),
    lastAttemptAt: instant.optional(),
    nextAttemptAt: instant.optional(),
    createdAt: instant,
    sentAt: instant.optional(),
    expiresAt: instant,
  })
  .register(apiRegistry, { id: 'WebhookDelivery', description: 'One webhook of a job to one endpoint' });

z.object({ deliveries: z.array(webhookDeliverySchema) }).register(apiRegistry, { id: 'WebhookDeliveryList' });

z.object({
  results: z.array(
    z.object({
      endpoint: z.string(),
      webhookId: z.string(),
      ok: z.boolean(),
      status: z.number().int().optional(),
      error: z.string().optional(),
    }),
  ),
}).register(apiRegistry, { id: 'WebhookTest' });

type JsonObject = Record<string, unknown>;

/** The /v1/webhooks paths and the document's `webhooks`, given openapi.ts's helpers. */
export function webhookDocument(
  ref: (id: string) => JsonObject,
  json: (schema: JsonObject, description: string) => JsonObject,
  errors: (statuses: Record<number, string>) => Record<string, JsonObject>,
): { paths: Record<string, JsonObject>; webhooks: Record<string, JsonObject> } {
  const signed = [
    ['webhook-id', 'The event id: the same on every retry and for every endpoint'],
    ['webhook-timestamp', 'Seconds since the epoch when this attempt was signed'],
    ['webhook-signature', 'v1,<base64 HMAC-SHA256 of id.timestamp.body>; space-separated, one per secret'],
  ].map(([name, description]) => ({ name, in: 'header', required: true, schema: { type: 'string' }, description }));
  const hook = (summary: string, schema: string): JsonObject => ({
    post: {
      summary,
      parameters: signed,
      requestBody: { required: true, content: { 'application/json': { schema: ref(schema) } } },
      responses: {
        '2XX': { description: 'Acknowledged: no more attempts' },
        410: { description: 'Gone: no more attempts to this endpoint for this event' },
        default: { description: 'Anything else: tried again with backoff until WEBHOOK_MAX_AGE' },
      },
    },
  });
  return {
    paths: {
      '/v1/webhooks/test': {
        post: {
          operationId: 'testWebhooks',
          summary: "A signed `ping` to each of the caller's endpoints (WEBHOOKS), once, with each outcome",
          responses: {
            200: json(ref('WebhookTest'), 'Every endpoint acknowledged'),
            502: json(ref('WebhookTest'), 'An endpoint did not acknowledge (see each result)'),
            ...errors({ 401: 'No or wrong gateway credentials', 404: 'No endpoint is configured for this key' }),
          },
        },
      },
      '/v1/webhooks/jobs/{jobId}': {
        get: {
          operationId: 'listJobWebhooks',
          summary: "A job's webhooks: endpoint host, event, attempts, last status, next attempt",
          parameters: [{ name: 'jobId', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            200: json(ref('WebhookDeliveryList'), "The job's webhooks (another owner's: none)"),
            ...errors({ 401: 'No or wrong gateway credentials' }),
          },
        },
      },
      '/v1/webhooks/deliveries/{id}/resend': {
        post: {
          operationId: 'resendWebhook',
          summary: 'Sends a failed (or 410) webhook again, same webhook-id and body',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            202: json(ref('WebhookDelivery'), 'Pending again, with a fresh WEBHOOK_MAX_AGE'),
            ...errors({ 401: 'No or wrong gateway credentials', 404: 'No such delivery', 409: 'Pending or sent' }),
          },
        },
      },
    },
    webhooks: {
      'recording.delivered': hook("Every part is stored in Imagicle; carries Imagicle's ids", 'WebhookEvent'),
      'recording.failed': hook("Failed for good: Imagicle's answer or the gateway's reason", 'WebhookEvent'),
      'recording.held': hook('An ambiguous outcome (Imagicle may have it) awaiting an operator', 'WebhookEvent'),
      'recording.retrying': hook('The first transient failure (endpoints with retrying: true)', 'WebhookEvent'),
      ping: hook('POST /v1/webhooks/test', 'WebhookPing'),
    },
  };
}
