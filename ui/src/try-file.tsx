/** Try a file: upload it to /v1/recordings (converted, delivered) or /v1/transcode (converted only), see the report. */
import { useState } from 'preact/hooks';
import { call, explain } from './api';
import { ErrorNote } from './error-note';

interface Report {
  requestId?: string;
  jobId?: string;
  decision?: { action: string; reasons: string[] };
  input?: Record<string, unknown>;
  output?: Record<string, unknown>;
  upstream?: { status?: number; id?: unknown };
  parts?: unknown[];
}

export function TryFile() {
  const [endpoint, setEndpoint] = useState<'recordings' | 'transcode'>('recordings');
  const [result, setResult] = useState<{
    status: number;
    report?: Report;
    headers?: Record<string, string>;
    download?: string;
  }>();
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  // The metadata is kept in state: switching endpoints (which disables the fieldset) keeps what was typed.
  const [fields, setFields] = useState(() => ({
    startDateTime: new Date(Date.now() - new Date().getTimezoneOffset() * 60_000).toISOString().slice(0, 19),
    direction: '1',
    username: 'console',
    phoneNumber: '100',
    remoteNumber: '+390200000000',
    pbxCallId: `console-${Date.now()}`,
  }));
  const [sentCallId, setSentCallId] = useState<string | null | undefined>();
  const field = (name: keyof typeof fields) => ({
    name,
    value: fields[name],
    onInput: (e: { currentTarget: { value: string } }) => setFields({ ...fields, [name]: e.currentTarget.value }),
  });
  const submit = async (form: HTMLFormElement): Promise<void> => {
    const data = new FormData(form);
    const body = new FormData();
    const file = data.get('attachment');
    if (!(file instanceof File) || file.size === 0) {
      setError(new Error('Choose an audio file first'));
      return;
    }
    const start = new Date(fields.startDateTime);
    if (endpoint === 'recordings') {
      if (Number.isNaN(start.getTime())) {
        setError(new Error('Give the start date and time of the recording'));
        return;
      }
      const pbxCallId = fields.pbxCallId.trim() || null;
      body.append(
        'jsondata',
        JSON.stringify({
          startDateTime: start.toISOString(),
          direction: Number(fields.direction),
          localParty: { username: fields.username, phoneNumber: fields.phoneNumber },
          remoteParty: { phoneNumber: fields.remoteNumber },
          pbxCallId,
          notes: 'uploaded from the gateway console',
        }),
      );
      setSentCallId(pbxCallId);
    } else setSentCallId(undefined);
    // /v1/transcode takes the audio alone: no metadata, nothing is delivered.
    body.append('attachment', file, file.name);
    setBusy(true);
    setError(undefined);
    setResult(undefined);
    try {
      const res = await call(`/v1/${endpoint}`, { method: 'POST', body }, { okStatuses: 'any' });
      const json = res.headers.get('content-type')?.startsWith('application/json')
        ? ((await res.json()) as Report & { message?: string })
        : undefined;
      // Imagicle refused or failed the import: the report still says what was done (a held job is named in it).
      if (!res.ok && !json?.decision) throw new Error(`${res.status}: ${explain(json?.message ?? res.statusText)}`);
      if (json) {
        setResult({ status: res.status, report: json });
      } else {
        const headers = Object.fromEntries(
          ['x-audio-decision', 'x-audio-duration', 'content-type', 'content-length'].map((h) => [
            h,
            res.headers.get(h) ?? '',
          ]),
        );
        setResult({ status: res.status, headers, download: URL.createObjectURL(await res.blob()) });
      }
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section>
      <h2>Try a file</h2>
      <form
        class="try"
        data-testid="try-form"
        onSubmit={(e) => {
          e.preventDefault();
          void submit(e.currentTarget);
        }}
      >
        <label>
          Audio <input type="file" name="attachment" required />
        </label>
        <label>
          Endpoint{' '}
          <select
            name="endpoint"
            value={endpoint}
            onChange={(e) => setEndpoint(e.currentTarget.value as 'recordings' | 'transcode')}
          >
            <option value="recordings">/v1/recordings (convert and deliver to Imagicle)</option>
            <option value="transcode">/v1/transcode (convert only)</option>
          </select>
        </label>
        <fieldset disabled={endpoint === 'transcode'}>
          <legend>Recording metadata</legend>
          <label>
            Start <input type="datetime-local" step="1" {...field('startDateTime')} />
          </label>
          <label>
            Direction{' '}
            <select
              name="direction"
              value={fields.direction}
              onChange={(e) => setFields({ ...fields, direction: e.currentTarget.value })}
            >
              <option value="1">incoming</option>
              <option value="2">outgoing</option>
              <option value="0">unknown</option>
            </select>
          </label>
          <label>
            User <input {...field('username')} />
          </label>
          <label>
            Extension <input {...field('phoneNumber')} />
          </label>
          <label>
            Remote number <input {...field('remoteNumber')} />
          </label>
          <label>
            pbxCallId <input {...field('pbxCallId')} />
          </label>
        </fieldset>
        <button type="submit" disabled={busy}>
          {busy ? 'Converting…' : 'Upload'}
        </button>
      </form>
      <ErrorNote error={error} />
      {result?.report && (
        <div class="report" data-testid="report">
          <p>
            HTTP {result.status}: <strong data-testid="report-decision">{result.report.decision?.action}</strong>
            {result.report.jobId && (
              <>
                {' '}
                — job{' '}
                <a href={`#/jobs/${result.report.jobId}`} data-testid="report-job">
                  {result.report.jobId}
                </a>
              </>
            )}
          </p>
          {sentCallId !== undefined && (
            <p data-testid="sent-call-id">
              Sent with pbxCallId <code>{sentCallId ?? '(none)'}</code>
            </p>
          )}
          <ul>
            {result.report.decision?.reasons.map((r) => (
              <li key={r}>{r}</li>
            ))}
          </ul>
          <pre>
            {JSON.stringify(
              { input: result.report.input, output: result.report.output, upstream: result.report.upstream },
              null,
              2,
            )}
          </pre>
        </div>
      )}
      {result?.headers && (
        <div class="report" data-testid="report">
          <p>
            HTTP {result.status}: <strong data-testid="report-decision">{result.headers['x-audio-decision']}</strong>,{' '}
            {result.headers['x-audio-duration']}, {result.headers['content-type']}, {result.headers['content-length']}{' '}
            bytes —{' '}
            <a href={result.download} download="converted">
              download
            </a>
          </p>
        </div>
      )}
    </section>
  );
}
