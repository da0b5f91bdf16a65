/**
 * Live counters from /metrics (every 5 s), upstream health from /readyz, free space from /metrics/status, rates over the last hour
 * per 5 minutes as the gateway keeps them (/metrics/rates, small SVG charts), the watched folder's state (/metrics/status
 * `watch`), and the recent failures from the jobs API.
 */
import { useEffect, useState } from 'preact/hooks';
import { call, explain, getJson, needsKey, parseMetrics, type PromSample } from './api';
import { ErrorNote } from './error-note';
import { SignIn } from './sign-in';
import type { JobList } from './types';

interface Readiness {
  status: string;
  ffmpeg: { ok: boolean; ffmpeg?: string };
  upstream: { reachable: boolean; status?: number };
  reconciliation?: { available: boolean | null; reason?: string };
  blobDir?: { ok: boolean };
}

/** GET /metrics/status: operators only, like /metrics. */
interface OperatorStatus {
  disk?: Record<string, { freeBytes: number; totalBytes: number }>;
  /** WATCH_DIR under serve. */
  watch?: {
    waiting: number;
    inProgress: number;
    retrying: number;
    taken: number;
    delivered: number;
    failed: number;
    lastScanAt?: string;
  };
}

/** GET /metrics/rates: twelve 5-minute buckets, oldest first. */
interface Rates {
  bucketSeconds: number;
  from: string;
  series: { uploads: number[]; deliveries: number[]; failures: number[] };
}

/** A row of bars, one per 5 minutes, drawn as SVG (no chart service). */
function Bars({ values, label }: { values: number[]; label: string }) {
  const max = Math.max(1, ...values);
  const w = 12;
  const h = 40;
  return (
    <figure class="chart" data-testid={`chart-${label}`}>
      <svg width={values.length * w} height={h} role="img" aria-label={`${label} per 5 minutes, last hour`}>
        {values.map((v, i) => (
          <rect key={i} x={i * w + 1} y={h - (v / max) * h} width={w - 2} height={(v / max) * h} class="bar">
            <title>{`${v} ${label}, ${(values.length - i) * 5} to ${(values.length - i - 1) * 5} min ago`}</title>
          </rect>
        ))}
      </svg>
      <figcaption>
        {label}: {values.reduce((a, b) => a + b, 0)} in the last hour (max {max}/5 min)
      </figcaption>
    </figure>
  );
}

const P = 'imagicle_gateway_';

function total(samples: PromSample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

function by(samples: PromSample[], name: string, label: string): [string, number][] {
  const out = new Map<string, number>();
  for (const s of samples)
    if (s.name === name) out.set(s.labels[label] ?? '', (out.get(s.labels[label] ?? '') ?? 0) + s.value);
  return [...out.entries()].sort((a, b) => b[1] - a[1]);
}

function bytes(n: number): string {
  if (n < 1e6) return `${(n / 1e3).toFixed(n === 0 ? 0 : 1)} kB`;
  return n < 1e9 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e9).toFixed(2)} GB`;
}

/** WATCH_DIR's state from /metrics/status; without it, what /metrics counted of the door. */
function WatchedFolder(props: { status: OperatorStatus['watch']; taken: number; failed: number }) {
  const w = props.status;
  if (!w)
    return (
      <p data-testid="watch" class="muted">
        {props.taken === 0 && props.failed === 0
          ? 'No folder is watched by this gateway (WATCH_DIR).'
          : `${props.taken} taken, ${props.failed} failed since the gateway started.`}
      </p>
    );
  const cells: [string, number][] = [
    ['waiting', w.waiting],
    ['in progress', w.inProgress],
    ['retrying', w.retrying],
    ['taken', w.taken],
    ['delivered', w.delivered],
    ['failed', w.failed],
  ];
  return (
    <div data-testid="watch">
      <div class="tiles">
        {cells.map(([label, value]) => (
          <div class="tile" key={label} data-watch={label}>
            <span class="value">{value}</span>
            <span class="label">{label}</span>
          </div>
        ))}
      </div>
      <p class="muted">
        Taken, delivered and failed count since the gateway started; failed files are in the folder's failed/ with their
        .error.json.{w.lastScanAt ? ` Last look: ${w.lastScanAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}.` : ''}
      </p>
    </div>
  );
}

export function Overview() {
  const [samples, setSamples] = useState<PromSample[]>([]);
  const [failed, setFailed] = useState<JobList | undefined>();
  const [error, setError] = useState<unknown>();
  const [ready, setReady] = useState<Readiness | undefined>();
  const [rates, setRates] = useState<Rates | undefined>();
  const [status, setStatus] = useState<OperatorStatus | undefined>();
  const signedOut = needsKey(error);
  useEffect(() => {
    if (signedOut) return undefined; // until a key is given: no polling, no zeros
    let stop = false;
    const load = async (): Promise<void> => {
      try {
        // /readyz is public and answers 503 with its reasons when not ready.
        void fetch('/readyz')
          .then((r) => r.json() as Promise<Readiness>)
          .then(
            (r) => !stop && setReady(r),
            () => undefined,
          );
        const text = await (await call('/metrics')).text();
        const hour = await getJson<Rates>('/metrics/rates');
        const folders = await getJson<OperatorStatus>('/metrics/status');
        const jobs = await getJson<JobList>('/v1/jobs?state=failed').catch((e: unknown) => {
          if (e instanceof Error && /^404/.test(e.message)) return undefined; // DELIVERY=sync: no spool
          throw e;
        });
        if (stop) return;
        const parsed = parseMetrics(text);
        setRates(hour);
        setStatus(folders);
        setSamples(parsed);
        setFailed(jobs);
        setError(undefined);
      } catch (e) {
        if (!stop) setError(e);
      }
    };
    void load();
    const timer = setInterval(() => void load(), 5000);
    return () => {
      stop = true;
      clearInterval(timer);
    };
  }, [signedOut]);
  if (signedOut) return <SignIn />;
  const watch = (outcome: string): number => total(samples, `${P}door_files_total`, { door: 'watch', outcome });
  const tiles: [string, string | number][] = [
    ['Uploads', total(samples, `${P}uploads_total`)],
    ['Delivered', total(samples, `${P}uploads_total`, { outcome: 'delivered' })],
    ['Refused inputs', total(samples, `${P}inputs_refused_total`)],
    ['Duplicates suppressed', total(samples, `${P}duplicates_suppressed_total`)],
    ['Retries', total(samples, `${P}delivery_retries_total`)],
    ['Conversions running', total(samples, `${P}conversions`, { state: 'running' })],
    ['Waiting', total(samples, `${P}conversions`, { state: 'waiting' })],
    [
      'Undelivered jobs',
      ['received', 'ready', 'delivering', 'failed'].reduce(
        (s, state) => s + total(samples, `${P}spool_jobs`, { state }),
        0,
      ),
    ],
    ['Oldest undelivered', `${Math.round(total(samples, `${P}oldest_undelivered_job_age_seconds`))} s`],
    ['Spool', bytes(total(samples, `${P}spool_bytes`))],
  ];
  const recent = [...(failed?.jobs ?? [])].sort((a, b) => b.createdAt.localeCompare(a.createdAt)).slice(0, 10);
  const up = total(samples, `${P}upstream_up`);
  return (
    <section>
      <h2>Overview</h2>
      <ErrorNote error={error} />
      <div class="health" data-testid="health">
        <span class={`dot ${ready?.upstream.reachable ? 'ok' : 'bad'}`} />
        Imagicle {ready ? (ready.upstream.reachable ? 'reachable' : 'NOT reachable') : up ? 'reachable' : '…'}
        <span class={`dot ${ready?.ffmpeg.ok ? 'ok' : 'bad'}`} />
        ffmpeg {ready ? (ready.ffmpeg.ok ? 'ready' : 'NOT usable') : '…'}
        <span class={`dot ${ready?.reconciliation?.available ? 'ok' : 'unknown'}`} />
        reconciliation{' '}
        <span data-testid="reconciliation">
          {!ready?.reconciliation
            ? 'not reported'
            : ready.reconciliation.available === null
              ? 'not checked yet'
              : ready.reconciliation.available
                ? 'available'
                : `not available${ready.reconciliation.reason ? ` (${ready.reconciliation.reason})` : ''}`}
        </span>
        {status?.disk &&
          Object.entries(status.disk).map(([name, d]) => (
            <span key={name} data-testid={`free-${name}`} class={d.freeBytes < d.totalBytes * 0.1 ? 'error' : ''}>
              {' '}
              · {name} free {bytes(d.freeBytes)} ({Math.round((d.freeBytes / Math.max(1, d.totalBytes)) * 100)}%)
            </span>
          ))}
        <span> · spool holds {bytes(total(samples, `${P}spool_bytes`))}</span>
      </div>
      <div class="charts" data-testid="rates">
        <Bars values={rates?.series.uploads ?? []} label="uploads" />
        <Bars values={rates?.series.deliveries ?? []} label="deliveries" />
        <Bars values={rates?.series.failures ?? []} label="failures" />
      </div>
      <p class="muted">
        The last hour per 5 minutes, kept by the gateway since it started (failures: recordings that failed for good or
        are held); Prometheus keeps the long view.
      </p>
      <div class="tiles" data-testid="tiles">
        {tiles.map(([label, value]) => (
          <div class="tile" key={label}>
            <span class="value">{value}</span>
            <span class="label">{label}</span>
          </div>
        ))}
      </div>
      <div class="columns">
        <div>
          <h3>Outcomes</h3>
          <table>
            <tbody>
              {by(samples, `${P}uploads_total`, 'outcome').map(([k, v]) => (
                <tr key={k}>
                  <td>{k}</td>
                  <td class="num">{v}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <div>
          <h3>Imagicle answers</h3>
          <table>
            <tbody>
              {by(samples, `${P}upstream_responses_total`, 'status').map(([k, v]) => (
                <tr key={k}>
                  <td>{k}</td>
                  <td class="num">{v}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <div>
          <h3>Input codecs</h3>
          <table>
            <tbody>
              {by(samples, `${P}input_codecs_total`, 'codec').map(([k, v]) => (
                <tr key={k}>
                  <td>{k}</td>
                  <td class="num">{v}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </div>
      <h3>Watched folder</h3>
      <WatchedFolder status={status?.watch} taken={watch('taken')} failed={watch('failed')} />
      <h3>Recent failures</h3>
      {recent.length === 0 ? (
        <p class="muted">None.</p>
      ) : (
        <table data-testid="recent-failures">
          <thead>
            <tr>
              <th>Failed at</th>
              <th>pbxCallId</th>
              <th>Last error</th>
            </tr>
          </thead>
          <tbody>
            {recent.map((j) => (
              <tr key={j.jobId}>
                <td>
                  <a href={`#/jobs/${j.jobId}`}>{j.failedAt ?? j.updatedAt}</a>
                </td>
                <td>{j.pbxCallId}</td>
                <td>{j.lastError ? explain(j.lastError.message) : ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
