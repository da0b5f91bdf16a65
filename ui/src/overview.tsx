/** Live counters from /metrics (every 5 s) and the recent failures from the jobs API. */
import { useEffect, useState } from 'preact/hooks';
import { call, getJson, parseMetrics, type PromSample } from './api';
import { ErrorNote } from './error-note';
import type { JobList } from './types';

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

export function Overview() {
  const [samples, setSamples] = useState<PromSample[]>([]);
  const [failed, setFailed] = useState<JobList | undefined>();
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    let stop = false;
    const load = async (): Promise<void> => {
      try {
        const text = await (await call('/metrics')).text();
        const jobs = await getJson<JobList>('/v1/jobs?state=failed').catch((e: unknown) => {
          if (e instanceof Error && /^404/.test(e.message)) return undefined; // DELIVERY=sync: no spool
          throw e;
        });
        if (stop) return;
        setSamples(parseMetrics(text));
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
  }, []);
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
  const recent = (failed?.jobs ?? []).slice(-10).reverse();
  return (
    <section>
      <h2>Overview</h2>
      <ErrorNote error={error} />
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
                <td>{j.lastError?.message}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
