/** What the console reads from the jobs API (GET /v1/jobs, /v1/jobs/{id}); see /openapi.json for the whole contract. */
export interface ChannelAnalysis {
  channel: string;
  party: string;
  rmsDbfs: number | null;
  peakDbfs: number | null;
  speechShare: number;
  silent: boolean;
}

export interface Attempt {
  at: string;
  part: number;
  attempt: number;
  verdict: string;
  status?: number;
  code?: string;
  answer?: unknown;
  ms: number;
}

export interface Job {
  jobId: string;
  state: string;
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
  lastError?: { at: string; status?: number; code?: string; message: string; body?: unknown };
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
}

export interface JobList {
  jobs: Job[];
  count: number;
  spoolBytes: number;
}

export interface DtmfReport {
  action: 'none' | 'detected' | 'masked';
  tones: number;
  guardMs?: number;
  channels: { channel: string; tones: number; spans: { startMs: number; endMs: number; levelDbfs: number }[] }[];
}
