/** The jobs list (filter by state, search by pbxCallId) and one job's detail, with retry and delete. */
import { useEffect, useState } from 'preact/hooks';
import { call, getJson } from './api';
import { DtmfSpans, maskedSpans } from './dtmf-spans';
import { ErrorNote } from './error-note';
import type { Job, JobList } from './types';

const STATES = ['', 'received', 'ready', 'delivering', 'delivered', 'failed'];

const show = (value: unknown): string =>
  value === undefined || value === null ? '' : typeof value === 'string' ? value : JSON.stringify(value);
const db = (value: number | null): string => (value === null ? '−∞' : `${value.toFixed(1)} dBFS`);

export function JobsPage() {
  const params = new URLSearchParams(location.hash.split('?')[1] ?? '');
  const [state, setState] = useState(params.get('state') ?? '');
  const [search, setSearch] = useState(params.get('pbxCallId') ?? '');
  const [list, setList] = useState<JobList | undefined>();
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    const query = new URLSearchParams();
    if (state) query.set('state', state);
    if (search.trim()) query.set('pbxCallId', search.trim());
    getJson<JobList>(`/v1/jobs?${query.toString()}`).then(
      (l) => (setList(l), setError(undefined)),
      (e: unknown) => setError(e),
    );
  }, [state, search]);
  const jobs = [...(list?.jobs ?? [])].reverse();
  return (
    <section>
      <h2>Jobs</h2>
      <div class="filters">
        <label>
          State{' '}
          <select name="state" value={state} onChange={(e) => setState(e.currentTarget.value)}>
            {STATES.map((s) => (
              <option value={s} key={s}>
                {s || 'any'}
              </option>
            ))}
          </select>
        </label>
        <label>
          pbxCallId{' '}
          <input name="pbxCallId" type="search" value={search} onInput={(e) => setSearch(e.currentTarget.value)} />
        </label>
        <span class="muted">{list ? `${list.count} job${list.count === 1 ? '' : 's'}` : ''}</span>
      </div>
      <ErrorNote error={error} />
      <table data-testid="jobs">
        <thead>
          <tr>
            <th>Created</th>
            <th>State</th>
            <th>pbxCallId</th>
            <th>Decision</th>
            <th>Attempts</th>
            <th>Last error</th>
          </tr>
        </thead>
        <tbody>
          {jobs.map((j) => (
            <tr key={j.jobId} data-job={j.jobId}>
              <td>
                <a href={`#/jobs/${j.jobId}`}>{j.createdAt}</a>
              </td>
              <td>
                <span class={`state ${j.state}`}>{j.state}</span>
              </td>
              <td>{j.pbxCallId}</td>
              <td>{j.decision}</td>
              <td class="num">{j.attempts}</td>
              <td>{j.lastError?.message}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/** A waveform fetched with the API key (an <img src> could not send it), shown from a blob URL. */
function Waveform({
  jobId,
  channel,
  label,
  masked = [],
}: {
  jobId: string;
  channel: number;
  label: string;
  masked?: ReturnType<typeof maskedSpans>;
}) {
  const [url, setUrl] = useState<string | undefined>();
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    let made: string | undefined;
    call(`/v1/jobs/${jobId}/waveform/${channel}.png`)
      .then((res) => res.blob())
      .then((blob) => setUrl((made = URL.createObjectURL(blob))), setError);
    return () => made && URL.revokeObjectURL(made);
  }, [jobId, channel]);
  return (
    <figure class="waveform">
      <figcaption>{label}</figcaption>
      {url ? (
        <div class="waveform-picture">
          <img src={url} alt={`waveform of ${label}`} data-testid={`waveform-${channel}`} />
          <DtmfSpans spans={masked} />
        </div>
      ) : (
        <ErrorNote error={error} />
      )}
    </figure>
  );
}

export function JobDetail({ id }: { id: string }) {
  const [job, setJob] = useState<Job | undefined>();
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const load = (): Promise<void> =>
    getJson<Job>(`/v1/jobs/${id}`).then(
      (j) => (setJob(j), setError(undefined)),
      (e: unknown) => setError(e),
    );
  useEffect(() => {
    void load();
    // Follow a job that is still moving.
    const timer = setInterval(() => {
      if (job && (job.state === 'delivered' || job.state === 'failed')) return;
      void load();
    }, 2000);
    return () => clearInterval(timer);
  }, [id, job?.state]);
  const act = async (what: 'retry' | 'delete'): Promise<void> => {
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
  if (!job) return <ErrorNote error={error} />;
  const r = job.report;
  const analysis = r?.stereo?.analysis;
  const channels = r?.output.channels ?? 0;
  const channelName = (c: number): string =>
    channels === 2 && r?.stereo
      ? `${c === 0 ? 'left' : 'right'}: ${c === 0 ? r.stereo.mapping.left : r.stereo.mapping.right}`
      : `channel ${c + 1}`;
  return (
    <section data-testid="job-detail">
      <h2>
        Job <code>{job.jobId}</code>{' '}
        <span class={`state ${job.state}`} data-testid="job-state">
          {job.state}
        </span>
      </h2>
      <ErrorNote error={error} />
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
      <dl class="facts">
        <dt>pbxCallId</dt>
        <dd>{job.pbxCallId}</dd>
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
            <dd class="error">{job.lastError.message}</dd>
          </>
        )}
      </dl>
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
              <dd>{r.output.channels}</dd>
              <dt>Duration</dt>
              <dd>{r.output.duration}</dd>
              <dt>Bytes</dt>
              <dd>{r.output.bytes}</dd>
            </dl>
          </div>
        </div>
      )}
      {channels > 0 && (
        <>
          <h3>Waveforms</h3>
          <div class="waveforms">
            {Array.from({ length: channels }, (_, c) => (
              <Waveform
                jobId={job.jobId}
                channel={c}
                label={channelName(c)}
                key={c}
                // The picture is part 1's: the spans are drawn when it is the whole recording.
                masked={job.parts.length <= 1 ? maskedSpans(r?.dtmf, c, r?.output.durationSeconds) : []}
              />
            ))}
          </div>
        </>
      )}
      {analysis && (
        <>
          <h3>Stereo analysis</h3>
          <table>
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
                  <td>{c.channel}</td>
                  <td>{c.party}</td>
                  <td class="num">{db(c.rmsDbfs)}</td>
                  <td class="num">{db(c.peakDbfs)}</td>
                  <td class="num">{Math.round(c.speechShare * 100)}%</td>
                  <td>{c.silent ? 'yes' : ''}</td>
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
      <table data-testid="parts">
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
              <td>
                {p.part}/{p.of}
              </td>
              <td>{p.state}</td>
              <td>{p.duration}</td>
              <td class="num">{p.bytes}</td>
              <td>{p.status}</td>
              <td>
                <code>{show(p.id)}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Attempts</h3>
      <table data-testid="attempts">
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
              <td>{a.at}</td>
              <td>{a.part}</td>
              <td>{a.attempt}</td>
              <td>{a.verdict}</td>
              <td>{a.status ?? a.code}</td>
              <td class="num">{a.ms} ms</td>
              <td>
                <code>{show(a.answer)}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
