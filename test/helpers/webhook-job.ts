/** Job records and events as the job-life module makes them, for testing the webhook sink without a gateway. */
import { randomUUID } from 'node:crypto';
import type { JobEvent, JobEventType } from '../../src/delivery/job-events.js';
import type { JobRecord } from '../../src/delivery/job.js';

export const CALLER_AUTHORIZATION = 'Basic Y2FsbGVyOmNhbGxlci1zZWNyZXQtcGFzc3dvcmQ=';
export const IMAGICLE_URL = 'https://ucx-secret.example.internal:8443/imagicle';

export function jobEvent(type: JobEventType): JobEvent {
  return { id: randomUUID(), type, at: new Date().toISOString() };
}

/** A job in the state an event of `type` leaves it in (two parts; failed and held carry an error). */
export function jobFor(type: JobEventType, overrides: Partial<JobRecord> = {}): JobRecord {
  const now = new Date().toISOString();
  const delivered = type === 'recording.delivered';
  const part = (index: number) => ({
    index,
    count: 2,
    file: `part-${index}.wav`,
    bytes: 160_044,
    samples: 80_000,
    sampleRate: 8000,
    durationSeconds: 10,
    isoDuration: 'PT10S',
    startOffsetSeconds: (index - 1) * 10,
    filename: `call-${index}.wav`,
    metadata: { pbxCallId: 'call-42', localParty: { username: 'giuliano', phoneNumber: '376' } },
    state: delivered || index === 1 ? ('delivered' as const) : ('pending' as const),
    attempts: 1,
    upstream:
      delivered || index === 1
        ? { status: 200, contentType: 'application/json', body: `"rec-${index}"`, json: `rec-${index}` }
        : undefined,
    deliveredAt: delivered || index === 1 ? now : undefined,
  });
  return {
    version: 1,
    id: randomUUID(),
    mode: 'native',
    requestId: 'req-1',
    async: true,
    owner: 'key:0123abcd4567+auth:00112233aabbccdd',
    state: delivered ? 'delivered' : type === 'recording.retrying' ? 'ready' : 'failed',
    createdAt: now,
    updatedAt: now,
    expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
    metadata: {
      startDateTime: '2026-12-06T10:00:00.0000000Z',
      direction: 2,
      localParty: { username: 'giuliano', phoneNumber: '376' },
      remoteParty: { phoneNumber: '+390212345678' },
      pbxCallId: 'call-42',
    },
    stereoOptions: undefined,
    inputs: { attachment: { file: 'input.wav', originalName: 'call.wav', extension: '.wav', bytes: 320_044 } },
    callerAuthorization: CALLER_AUTHORIZATION,
    dedupKey: undefined,
    audioSha256: 'ab'.repeat(32),
    contentType: undefined,
    decision: 'transcode',
    parts: [part(1), part(2)],
    attempts: 2,
    nextAttemptAt: type === 'recording.retrying' ? new Date(Date.now() + 60_000).toISOString() : undefined,
    lastError: delivered
      ? undefined
      : {
          at: now,
          part: 2,
          status: type === 'recording.failed' ? 400 : 502,
          code: undefined,
          message: `Imagicle at ${IMAGICLE_URL} answered badly`,
          body: { reason: 1, message: `see ${IMAGICLE_URL}/fw/Apps/Recorder/WebAPI/Recordings` },
          ambiguous: type === 'recording.held',
        },
    possibleDuplicates: 0,
    deliveredAt: delivered ? now : undefined,
    failedAt: type === 'recording.failed' || type === 'recording.held' ? now : undefined,
    report: {
      input: {
        format: 'wav',
        codec: 'pcm_s24le',
        sampleRate: 48000,
        channels: 2,
        bitsPerSample: 24,
        durationSeconds: 20,
        headerless: undefined,
      },
      decision: { action: 'transcode', reasons: ['codec pcm_s24le is not accepted'] },
      output: {
        container: 'wav',
        codec: 'pcm_s16le',
        sampleRate: 8000,
        channels: 1,
        contentType: 'audio/wav',
        bytes: 320_088,
        duration: 'PT20S',
        durationSeconds: 20,
      },
      stereo: undefined,
    },
    ...overrides,
  };
}
