/**
 * One job: the recording's metadata, the decision, the output with an audio player, waveforms with a time axis,
 * the player's position and the part boundaries, the stereo analysis, parts and attempts; retry and delete.
 */
import { DtmfSpans, maskedSpans } from './dtmf-spans';
import { useEffect, useState } from 'preact/hooks';
import { call, explain, getJson, isoSeconds, needsKey } from './api';
import { ErrorNote } from './error-note';
import { JobWebhooks } from './job-webhooks';
import { SignIn } from './sign-in';
import type { Job } from './types';

const show = (value: unknown): string =>
  value === undefined || value === null ? '' : typeof value === 'string' ? value : JSON.stringify(value);
const db = (value: number | null): string => (value === null ? '−∞' : `${value.toFixed(1)} dBFS`);
const DIRECTIONS: Record<number, string> = { 0: 'unknown', 1: 'incoming', 2: 'outgoing' };

/** A file of the job fetched with the API key (an <img>/<audio> src could not send it), as a blob URL. */
function useBlob(url: string | undefined): { src?: string; error?: unknown } {
  const [state, setState] = useState<{ src?: string; error?: unknown }>({});
  useEffect(() => {
    if (!url) return undefined;
    let made: string | undefined;
    call(url)
      .then((res) => res.blob())
      .then(
        (blob) => setState({ src: (made = URL.createObjectURL(blob)) }),
        (error: unknown) => setState({ error }),
      );
    return () => made && URL.revokeObjectURL(made);
  }, [url]);
  return state;
}

/** Seconds → "1:05.2". */
const clock = (s: number): string => `${Math.floor(s / 60)}:${(s % 60).toFixed(1).padStart(4, '0')}`;

/** Ticks for an axis of `seconds`: about six, on round steps. */
function ticks(seconds: number): number[] {
  if (seconds <= 0) return [];
  const step = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600].find((s) => seconds / s <= 6) ?? 7200;
  return Array.from({ length: Math.floor(seconds / step) + 1 }, (_, i) => i * step);
}

function Waveform(props: {
  jobId: string;
  channel: number;
  label: string;
  seconds: number;
  position: number;
  ends: boolean;
  /** DTMF tones masked in this channel (issue 22), drawn over the picture. */
  masked?: ReturnType<typeof maskedSpans>;
}) {
  const { src, error } = useBlob(`/v1/jobs/${props.jobId}/waveform/${props.channel}.png`);
  const pct = (s: number): string => `${Math.min(100, (s / Math.max(props.seconds, 0.001)) * 100)}%`;
  return (
    <figure class="waveform">
      <figcaption>{props.label}</figcaption>
      {src ? (
        <div class="wave-box">
          <img src={src} alt={`waveform of ${props.label}`} data-testid={`waveform-${props.channel}`} />
          <div class="playhead" data-testid={`playhead-${props.channel}`} style={{ left: pct(props.position) }} />
          {props.ends && <div class="boundary" title="part 2 starts here" style={{ left: '100%' }} />}
          <DtmfSpans spans={props.masked ?? []} />
          <div class="axis" data-testid={`axis-${props.channel}`}>
            {ticks(props.seconds).map((t) => (
              <span key={t} style={{ left: pct(t) }}>
                {clock(t)}
              </span>
            ))}
          </div>
        </div>
      ) : (
        <ErrorNote error={error} />
      )}
    </figure>
  );
}

/** The output (or the input) in an <audio> element, when the job still holds it; the API's reason otherwise. */
function Player(props: { url: string; label: string; testid: string; onTime?: (s: number) => void }) {
  const { src, error } = useBlob(props.url);
  return (
    <div class="player">
      <span class="muted">{props.label}</span>
      {src ? (
        <audio
          controls
          preload="metadata"
          src={src}
          data-testid={props.testid}
          onTimeUpdate={(e) => props.onTime?.(e.currentTarget.currentTime)}
        />
      ) : error ? (
        <span class="muted" data-testid={`${props.testid}-gone`}>
          {error instanceof Error ? error.message.replace(/^\d+: /, '') : String(error)}
        </span>
      ) : (
        <span class="muted">loading…</span>
      )}
    </div>
  );
}

/** Which input channels went into each output channel, so that no two labels contradict each other. */
function channelLabels(job: Job): string[] {
  const r = job.report;
  const out = r?.output.channels ?? 0;
  const inChannels = r?.input.channels ?? out;
  if (out === 2 && r?.stereo) return [`left: ${r.stereo.mapping.left}`, `right: ${r.stereo.mapping.right}`];
  if (out === 2 && inChannels > 2)
    return [
      `left: mixed from the ${inChannels} input channels' left side (front left, centre, surround left)`,
      `right: mixed from the ${inChannels} input channels' right side (front right, centre, surround right)`,
    ];
  if (out === 1 && inChannels > 1) return [`mono: the ${inChannels} input channels mixed`];
  return Array.from({ length: out }, (_, c) => (out === 2 ? (c === 0 ? 'left' : 'right') : `channel ${c + 1}`));
}

export function JobDetail({ id }: { id: string }) {
  const [job, setJob] = useState<Job | undefined>();
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [position, setPosition] = useState(0);
  const load = (): Promise<void> =>
    getJson<Job>(`/v1/jobs/${id}`).then(
      (j) => (setJob(j), setError(undefined)),
      (e: unknown) => setError(e),
    );
  // Follow a job that is still moving, and its webhooks while one is being tried.
  const settled = job?.state === 'delivered' || job?.state === 'failed';
  const hooksMoving = (job?.webhooks ?? []).some((w) => w.state === 'pending');
  const moving = !job || !settled || hooksMoving;
  useEffect(() => {
    if (needsKey(error)) return undefined;
    void load();
    if (!moving) return undefined;
    const timer = setInterval(() => void load(), hooksMoving && settled ? 1000 : 2000);
    return () => clearInterval(timer);
  }, [id, job?.state, moving, needsKey(error)]);
  const held = job?.state === 'failed' && job.lastError?.ambiguous === true;
  const act = async (what: 'retry' | 'delete'): Promise<void> => {
    if (what === 'retry' && held) {
      const ok = confirm(
        'Imagicle may already hold this recording: its last answer came after the whole upload was sent ' +
          '(a 500, 502 or 504, or no answer at all). Sending it again may make a second copy in Imagicle. ' +
          'Once reconciliation is available the gateway asks Imagicle first and sends only what it does not have. ' +
          'Send it again?',
      );
      if (!ok) return;
    }
    setBusy(true);
    try {
      if (what === 'retry') await call(`/v1/jobs/${id}/retry`, { method: 'POST' });
      else {
        await call(`/v1/jobs/${id}`, { method: 'DELETE' });
        location.hash = '#/jobs';
        return;
      }
      await load();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  if (needsKey(error)) return <SignIn />;
  if (!job) return <ErrorNote error={error} />;
  const r = job.report;
  const analysis = r?.stereo?.analysis;
  const channels = r?.output.channels ?? 0;
  const labels = channelLabels(job);
  const part1 = job.parts[0];
  const waveSeconds = part1 ? isoSeconds(part1.duration) : isoSeconds(r?.output.duration);
  const m = job.metadata;
  const inputSeconds = r?.input.durationSeconds;
  return (
    <section data-testid="job-detail">
      <h2>
        Job <code>{job.jobId}</code>{' '}
        <span class={`state ${job.state}`} data-testid="job-state">
          {job.state}
        </span>
        {held && (
          <span class="state held" data-testid="held">
            held
          </span>
        )}
      </h2>
      <ErrorNote error={error} />
      {held && (
        <p class="warning" data-testid="held-note">
          Held for a decision: Imagicle may already hold this recording (its last answer came after the whole upload was
          sent). Retry sends it again, which may make a second copy; once reconciliation is available the gateway checks
          with Imagicle first. Delete forgets it.
        </p>
      )}
      <div class="actions">
        <button disabled={busy || job.state !== 'failed'} onClick={() => void act('retry')}>
          Retry
        </button>
        <button
          disabled={busy}
          onClick={() => {
            if (confirm(`Delete job ${job.jobId} and its files?`)) void act('delete');
          }}
        >
          Delete
        </button>
      </div>
      <div class="columns">
        <div>
          <h3>Recording</h3>
          <dl class="facts" data-testid="recording">
            <dt>Start</dt>
            <dd>{m?.startDateTime ?? job.startDateTime}</dd>
            {m && (
              <>
                <dt>Direction</dt>
                <dd>{DIRECTIONS[m.direction] ?? m.direction}</dd>
                <dt>Local party</dt>
                <dd>{[m.localParty?.username, m.localParty?.phoneNumber].filter(Boolean).join(' · ')}</dd>
                <dt>Remote party</dt>
                <dd>{[m.remoteParty?.username, m.remoteParty?.phoneNumber].filter(Boolean).join(' · ')}</dd>
                {m.notes && (
                  <>
                    <dt>Notes</dt>
                    <dd>{m.notes}</dd>
                  </>
                )}
              </>
            )}
            <dt>pbxCallId</dt>
            <dd>{job.pbxCallId}</dd>
            {job.originalName && (
              <>
                <dt>File</dt>
                <dd>{job.originalName}</dd>
              </>
            )}
            {inputSeconds !== undefined && (
              <>
                <dt>Input length</dt>
                <dd>{inputSeconds.toFixed(2)} s</dd>
              </>
            )}
            <dt>Door</dt>
            <dd>{job.door ?? 'http'}</dd>
          </dl>
        </div>
        <div>
          <h3>Delivery</h3>
          <dl class="facts">
            <dt>Request</dt>
            <dd>{job.requestId}</dd>
            <dt>Mode</dt>
            <dd>{job.mode}</dd>
            <dt>Created</dt>
            <dd>{job.createdAt}</dd>
            {job.deliveredAt && (
              <>
                <dt>Delivered</dt>
                <dd>{job.deliveredAt}</dd>
              </>
            )}
            {job.nextAttemptAt && (
              <>
                <dt>Next attempt</dt>
                <dd>{job.nextAttemptAt}</dd>
              </>
            )}
            {job.lastError && (
              <>
                <dt>Last error</dt>
                <dd class="error">{explain(job.lastError.message)}</dd>
              </>
            )}
          </dl>
        </div>
      </div>
      {r && (
        <div class="columns">
          <div>
            <h3>Input</h3>
            <dl class="facts">
              <dt>Format</dt>
              <dd>{r.input.format}</dd>
              <dt>Codec</dt>
              <dd>{r.input.codec}</dd>
              <dt>Rate</dt>
              <dd>{r.input.sampleRate} Hz</dd>
              <dt>Channels</dt>
              <dd>{r.input.channels}</dd>
              {r.input.headerless && (
                <>
                  <dt>Headerless</dt>
                  <dd>{r.input.headerless}</dd>
                </>
              )}
            </dl>
          </div>
          <div>
            <h3>Decision</h3>
            <p data-testid="decision">
              <strong>{r.decision.action}</strong>
            </p>
            <ul>
              {r.decision.reasons.map((reason) => (
                <li key={reason}>{reason}</li>
              ))}
            </ul>
          </div>
          <div>
            <h3>Output</h3>
            <dl class="facts">
              <dt>Format</dt>
              <dd>
                {r.output.container} {r.output.codec}
              </dd>
              <dt>Rate</dt>
              <dd>{r.output.sampleRate} Hz</dd>
              <dt>Channels</dt>
              <dd>{labels.join('; ')}</dd>
              <dt>Duration</dt>
              <dd>{r.output.duration}</dd>
              <dt>Bytes</dt>
              <dd>{r.output.bytes}</dd>
            </dl>
          </div>
        </div>
      )}
      <h3>Listen</h3>
      <div class="players">
        <Player
          url={`/v1/jobs/${job.jobId}/audio/output?part=1`}
          label={job.parts.length > 1 ? `Output, part 1 of ${job.parts.length}` : 'Output'}
          testid="player-output"
          onTime={setPosition}
        />
        <Player url={`/v1/jobs/${job.jobId}/audio/input`} label="Input, as uploaded" testid="player-input" />
      </div>
      {channels > 0 && (
        <>
          <h3>Waveforms{job.parts.length > 1 ? ` (part 1 of ${job.parts.length})` : ''}</h3>
          <div class="waveforms">
            {Array.from({ length: channels }, (_, c) => (
              <Waveform
                jobId={job.jobId}
                channel={c}
                label={labels[c] ?? `channel ${c + 1}`}
                seconds={waveSeconds}
                position={position}
                ends={job.parts.length > 1}
                // The picture is part 1's: the masked spans are drawn when it is the whole recording.
                masked={
                  job.parts.length <= 1 ? maskedSpans(job.report?.dtmf, c, job.report?.output.durationSeconds) : []
                }
                key={c}
              />
            ))}
          </div>
          {job.parts.length > 1 && (
            <p class="muted" data-testid="boundaries">
              Part boundaries:{' '}
              {job.parts
                .slice(0, -1)
                .reduce<number[]>((acc, p) => [...acc, (acc.at(-1) ?? 0) + isoSeconds(p.duration)], [])
                .map((s, i) => `part ${i + 2} starts at ${clock(s)}`)
                .join(', ')}{' '}
              (marked at the right edge of part 1).
            </p>
          )}
        </>
      )}
      {analysis && (
        <>
          <h3>Stereo analysis</h3>
          <table class="stack">
            <thead>
              <tr>
                <th>Channel</th>
                <th>Party</th>
                <th>RMS</th>
                <th>Peak</th>
                <th>Speech</th>
                <th>Silent</th>
              </tr>
            </thead>
            <tbody>
              {analysis.channels.map((c) => (
                <tr key={c.channel}>
                  <td data-label="Channel">{c.channel}</td>
                  <td data-label="Party">{c.party}</td>
                  <td data-label="RMS" class="num">
                    {db(c.rmsDbfs)}
                  </td>
                  <td data-label="Peak" class="num">
                    {db(c.peakDbfs)}
                  </td>
                  <td data-label="Speech" class="num">
                    {Math.round(c.speechShare * 100)}%
                  </td>
                  <td data-label="Silent">{c.silent ? 'yes' : ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <p class="muted">
            Correlation {analysis.correlation === null ? 'n/a' : analysis.correlation.toFixed(3)}
            {analysis.fakeStereo ? ' — fake stereo' : ''}
          </p>
          {r?.stereo?.warnings.map((w) => (
            <p class="warning" key={w}>
              {w}
            </p>
          ))}
        </>
      )}
      <h3>Parts</h3>
      <table data-testid="parts" class="stack">
        <thead>
          <tr>
            <th>Part</th>
            <th>State</th>
            <th>Duration</th>
            <th>Bytes</th>
            <th>Status</th>
            <th>Imagicle id</th>
          </tr>
        </thead>
        <tbody>
          {job.parts.map((p) => (
            <tr key={p.part}>
              <td data-label="Part">
                {p.part}/{p.of}
              </td>
              <td data-label="State">
                {p.state}
                {p.reconciled ? ' (found in Imagicle)' : ''}
              </td>
              <td data-label="Duration">{p.duration}</td>
              <td data-label="Bytes" class="num">
                {p.bytes}
              </td>
              <td data-label="Status">{p.status}</td>
              <td data-label="Imagicle id">
                <code>{p.imagicleId ?? show(p.id)}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Attempts</h3>
      <table data-testid="attempts" class="stack">
        <thead>
          <tr>
            <th>At</th>
            <th>Part</th>
            <th>Attempt</th>
            <th>Verdict</th>
            <th>Status</th>
            <th>Time</th>
            <th>Answer</th>
          </tr>
        </thead>
        <tbody>
          {job.history.map((a) => (
            <tr key={`${a.at}-${a.part}-${a.attempt}`}>
              <td data-label="At">{a.at}</td>
              <td data-label="Part">{a.part}</td>
              <td data-label="Attempt">{a.attempt}</td>
              <td data-label="Verdict">{a.verdict}</td>
              <td data-label="Status">{a.status ?? a.code}</td>
              <td data-label="Time" class="num">
                {a.ms} ms
              </td>
              <td data-label="Answer">
                <code>{show(a.answer)}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {job.webhooks && (
        <>
          <h3>Webhooks</h3>
          <JobWebhooks webhooks={job.webhooks} onChange={() => void load()} />
        </>
      )}
    </section>
  );
}
