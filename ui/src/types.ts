/** What the console reads from the jobs API (GET /v1/jobs, /v1/jobs/{id}); see /openapi.json for the whole contract. */
interface ChannelAnalysis {
  channel: string;
  party: string;
  rmsDbfs: number | null;
  peakDbfs: number | null;
  speechShare: number;
  silent: boolean;
}

interface Attempt {
  at: string;
  part: number;
  attempt: number;
  verdict: string;
  status?: number;
  code?: string;
  answer?: unknown;
  ms: number;
}

interface Party {
  username?: string;
  phoneNumber?: string;
}

export interface Job {
  jobId: string;
  state: string;
  /** How the recording came in (the jobs API of "one job life"; absent before it). */
  door?: 'http' | 'import' | 'watch';
  metadata?: {
    startDateTime: string;
    direction: number;
    localParty?: Party;
    remoteParty?: Party;
    notes?: string | null;
  };
  originalName?: string;
  mode: string;
  requestId: string;
  createdAt: string;
  updatedAt: string;
  deliveredAt?: string;
  failedAt?: string;
  nextAttemptAt?: string;
  attempts: number;
  possibleDuplicates: number;
  pbxCallId?: string | null;
  startDateTime: string;
  decision?: string;
  lastError?: { at: string; status?: number; code?: string; message: string; body?: unknown; ambiguous?: boolean };
  parts: {
    part: number;
    of: number;
    state: string;
    attempts: number;
    status?: number;
    id?: unknown;
    bytes: number;
    duration: string;
    filename: string;
    reconciled?: boolean;
    imagicleId?: string;
  }[];
  report?: {
    input: {
      format: string;
      codec?: string;
      sampleRate?: number;
      channels?: number;
      bitsPerSample?: number;
      durationSeconds?: number;
      headerless?: string;
    };
    decision: { action: string; reasons: string[] };
    output: {
      container: string;
      codec: string;
      sampleRate: number;
      channels: number;
      contentType: string;
      bytes: number;
      duration: string;
      durationSeconds?: number;
    };
    stereo?: {
      source: string;
      mapping: { left: string; right: string; decidedBy: string };
      analysis?: { channels: ChannelAnalysis[]; correlation: number | null; fakeStereo: boolean };
      warnings: string[];
    };
    /** DTMF tones per channel (issue 22): when and how loud, never which key. */
    dtmf?: DtmfReport;
  };
  history: Attempt[];
  /** Present when the gateway sends webhooks (WEBHOOKS): this job's, to the endpoints the caller may see. */
  webhooks?: JobWebhook[];
}

export const JOB_STATES = ['received', 'ready', 'delivering', 'delivered', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];

export interface JobList {
  /** Newest first from the paged API; oldest first from the spool's first API (the console sorts). */
  jobs: Job[];
  count: number;
  spoolBytes: number;
  /** The paged API: the next page, or null at the end. Absent: the whole list came at once. */
  nextCursor?: string | null;
  /** Per state, with every filter but the state applied. */
  counts?: Record<JobState, number>;
}

export interface DtmfReport {
  action: 'none' | 'detected' | 'masked';
  tones: number;
  guardMs?: number;
  channels: { channel: string; tones: number; spans: { startMs: number; endMs: number; levelDbfs: number }[] }[];
}

/** One webhook of a job to one endpoint (GET /v1/jobs/{id} `webhooks`; issue 23). */
export interface JobWebhook {
  id: string;
  webhookId: string;
  event: string;
  /** The endpoint's host only. */
  endpoint: string;
  kind: 'configured' | 'callback';
  state: 'pending' | 'sent' | 'failed' | 'gone';
  attempts: number;
  lastStatus?: number;
  lastError?: string;
  lastAttemptAt?: string;
  nextAttemptAt?: string;
  createdAt: string;
  sentAt?: string;
  expiresAt: string;
}
