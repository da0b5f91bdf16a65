/**
 * Where webhooks go and how they are sent (issue 23), as data: the endpoints
 * per owner (WEBHOOKS or WEBHOOKS_FILE), the hosts a caller's callbackUrl may
 * name, the private networks the gateway may reach, and the retry bounds.
 * config.ts validates the environment with these schemas; nothing here reads
 * process.env.
 */
import { z } from 'zod';
import { JOB_EVENT_TYPES, type JobEventType } from '../delivery/job-events.js';

/** What an endpoint gets when it names no events: every final outcome (retrying is opt-in). */
const DEFAULT_EVENTS: readonly JobEventType[] = ['recording.delivered', 'recording.failed', 'recording.held'];

/** A Standard Webhooks secret: `whsec_` and base64 of 24 to 64 bytes. */
const secretSchema = z
  .string()
  .regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, { error: 'a secret must be "whsec_" followed by base64' })
  .refine((s) => Buffer.from(s.slice(6), 'base64').length >= 24 && Buffer.from(s.slice(6), 'base64').length <= 64, {
    error: 'a secret must hold 24 to 64 bytes (base64 after "whsec_")',
  });

/** One secret, or several while rotating: every one signs each message. */
const secretsSchema = z.preprocess(
  (value) => (typeof value === 'string' ? [value] : value),
  z.array(secretSchema).min(1).max(5, { error: 'at most 5 secrets at once' }),
);

const eventsSchema = z
  .array(z.enum(JOB_EVENT_TYPES, { error: `events must be among ${JOB_EVENT_TYPES.join(', ')}` }))
  .min(1)
  .optional();

const urlSchema = z
  .url({ error: 'url must be an http(s) URL' })
  .refine((u) => /^https?:\/\//i.test(u), { error: 'url must start with http:// or https://' })
  .refine((u) => new URL(u).username === '' && new URL(u).password === '', {
    error: 'url must not carry credentials (sign with the secret instead)',
  });

const endpointSchema = z.strictObject({
  url: urlSchema,
  /** `secret` (one) or `secrets` (several during a rotation). */
  secret: secretsSchema.optional(),
  secrets: secretsSchema.optional(),
  events: eventsSchema,
  /** Also send recording.retrying (first transient failure of a job). */
  retrying: z.boolean().optional(),
  /** Operator's endpoint on a private, loopback or link-local address: reach it anyway. */
  allowPrivate: z.boolean().optional(),
});

/** How a per-request callbackUrl of this owner is signed, and what it gets. */
const callbackSchema = z.strictObject({
  secret: secretsSchema.optional(),
  secrets: secretsSchema.optional(),
  events: eventsSchema,
  retrying: z.boolean().optional(),
});

/** An owner's entry: its endpoints (a list), or `{ endpoints, callback }`. */
const ownerEntrySchema = z.preprocess(
  (value) => (Array.isArray(value) ? { endpoints: value } : value),
  z.strictObject({ endpoints: z.array(endpointSchema).default([]), callback: callbackSchema.optional() }),
);

const OWNER_KEY_RE = /^(\*|key:[0-9a-f]{12}|basic:[^\s+]+|anonymous)$/;
const OWNER_KEY_PROBLEM =
  'keys are owner ids as the jobs API names them: "key:<12 hex>", "basic:<user>", "anonymous" or "*"';

/** WEBHOOKS: `{ "<owner key id>" | "*": [endpoint, ...] | { endpoints, callback } }`. */
const webhooksSchema = z.record(z.string(), ownerEntrySchema);

interface Endpoint {
  url: string;
  secrets: readonly string[];
  events: readonly JobEventType[];
  allowPrivate: boolean;
}

interface CallbackSigning {
  secrets: readonly string[];
  events: readonly JobEventType[];
}

export interface OwnerWebhooks {
  endpoints: readonly Endpoint[];
  callback: CallbackSigning | undefined;
}

export interface WebhookSettings {
  /** By owner key id ("key:…", "basic:…", "anonymous") or "*" (owners without an entry of their own). */
  owners: Readonly<Record<string, OwnerWebhooks>>;
  /** Hosts a caller's callbackUrl may name (exact, or `*.example.com` for its subdomains). */
  allowedHosts: readonly string[];
  /** Private networks (CIDR) any webhook may reach although private, loopback or link-local. */
  privateNetworks: readonly string[];
  maxAgeMs: number;
  timeoutMs: number;
  concurrency: number;
  minDelayMs: number;
  maxDelayMs: number;
  /** How long sent and failed deliveries stay listed. */
  historyMs: number;
  /** Base of the job link in bodies (e.g. https://gateway.example.com); none: a path (/v1/jobs/{id}). */
  publicUrl: string | undefined;
}

export const DEFAULT_WEBHOOK_SETTINGS: WebhookSettings = {
  owners: {},
  allowedHosts: [],
  privateNetworks: [],
  maxAgeMs: 86_400_000,
  timeoutMs: 10_000,
  concurrency: 8,
  minDelayMs: 5000,
  maxDelayMs: 3_600_000,
  historyMs: 7 * 86_400_000,
  publicUrl: undefined,
};

type RawEntry = z.infer<typeof ownerEntrySchema>;

function eventsOf(events: readonly JobEventType[] | undefined, retrying: boolean | undefined): JobEventType[] {
  const chosen = new Set(events ?? DEFAULT_EVENTS);
  if (retrying) chosen.add('recording.retrying');
  return [...chosen];
}

function secretsOf(entry: { secret?: string[] | undefined; secrets?: string[] | undefined }): string[] {
  return [...(entry.secrets ?? []), ...(entry.secret ?? [])];
}

/** Problems of a parsed WEBHOOKS value that its schema does not express (a secret is required). */
function webhookProblems(raw: Record<string, RawEntry>): string[] {
  const problems: string[] = [];
  for (const [owner, { endpoints, callback }] of Object.entries(raw)) {
    endpoints.forEach((e, i) => {
      if (secretsOf(e).length === 0) problems.push(`${owner}[${i}]: give a secret ("whsec_…") or secrets`);
    });
    if (callback && secretsOf(callback).length === 0) problems.push(`${owner}.callback: give a secret or secrets`);
  }
  return problems;
}

function ownersOf(raw: Record<string, RawEntry>): Record<string, OwnerWebhooks> {
  const owners: Record<string, OwnerWebhooks> = {};
  for (const [owner, { endpoints, callback }] of Object.entries(raw)) {
    owners[owner] = {
      endpoints: endpoints.map((e) => ({
        url: e.url,
        secrets: secretsOf(e),
        events: eventsOf(e.events, e.retrying),
        allowPrivate: e.allowPrivate ?? false,
      })),
      callback: callback
        ? { secrets: secretsOf(callback), events: eventsOf(callback.events, callback.retrying) }
        : undefined,
    };
  }
  return owners;
}

/** The key of a job owner in WEBHOOKS: its id without the digest of a forwarded Authorization (http/owner.ts). */
export function ownerKeyOf(owner: string | undefined): string {
  if (!owner) return 'anonymous';
  const plus = owner.indexOf('+auth:');
  return plus === -1 ? owner : owner.slice(0, plus);
}

/** The webhooks of an owner: its own entry, else the catch-all "*". */
export function webhooksFor(settings: WebhookSettings, owner: string | undefined): OwnerWebhooks | undefined {
  return settings.owners[ownerKeyOf(owner)] ?? settings.owners['*'];
}

/** Whether anything is configured at all (the sink is then not built). */
export function webhooksConfigured(settings: WebhookSettings): boolean {
  return Object.keys(settings.owners).length > 0;
}

/** Reads WEBHOOKS (or the file's text): the endpoints per owner, or every problem with it (named by `label`). */
export function parseWebhooks(
  text: string | undefined,
  label: string,
): { owners: Record<string, OwnerWebhooks>; problems: string[] } {
  if (text === undefined || text.trim() === '') return { owners: {}, problems: [] };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { owners: {}, problems: [`${label}: not valid JSON`] };
  }
  const problems: string[] = [];
  if (json !== null && typeof json === 'object' && !Array.isArray(json)) {
    for (const key of Object.keys(json)) {
      if (!OWNER_KEY_RE.test(key)) problems.push(`${label}: ${key}: ${OWNER_KEY_PROBLEM}`);
    }
  }
  const parsed = webhooksSchema.safeParse(json);
  if (!parsed.success) {
    problems.push(...parsed.error.issues.map((i) => `${label}: ${i.path.join('.') || '(value)'}: ${i.message}`));
  }
  if (!parsed.success || problems.length > 0) return { owners: {}, problems };
  problems.push(...webhookProblems(parsed.data).map((p) => `${label}: ${p}`));
  return { owners: problems.length > 0 ? {} : ownersOf(parsed.data), problems };
}

/** Splits a comma-separated list (WEBHOOK_ALLOWED_HOSTS, WEBHOOK_PRIVATE_NETWORKS). */
export function listOf(text: string | undefined): string[] {
  return (text ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
