/**
 * The jobs list: paged by the server (newest first), filtered by state, door, start time and a search (pbxCallId,
 * a phone number, the username or an Imagicle id), the filters kept in the URL, refreshed every 5 s, bulk actions.
 * "Show more" follows the API's nextCursor; a refresh reloads the rows shown so far (pages of up to 500, following
 * nextCursor), so that new jobs appear on top without a gap below them.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { call, explain, getJson, needsKey } from './api';
import { ErrorNote } from './error-note';
import { SignIn } from './sign-in';
import { JOB_STATES, type Job, type JobList, type JobState } from './types';

const PAGE = 50;
/** The API's largest page (http/jobs.ts MAX_PAGE). */
const MAX_PAGE = 500;
const REFRESH_MS = 5000;
const DOORS = ['http', 'import', 'watch'] as const;

export interface JobFilters {
  state: string;
  door: string;
  q: string;
  from: string;
  to: string;
}

function filtersFrom(hash: string): JobFilters {
  const p = new URLSearchParams(hash.split('?')[1] ?? '');
  return {
    state: p.get('state') ?? '',
    door: p.get('door') ?? '',
    q: p.get('q') ?? p.get('pbxCallId') ?? '',
    from: p.get('from') ?? '',
    to: p.get('to') ?? '',
  };
}

function hashFor(f: JobFilters): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) p.set(k, v);
  const query = p.toString();
  return `#/jobs${query ? `?${query}` : ''}`;
}

/** datetime-local (the operator's wall clock) ↔ ISO instant for the API. */
const toIso = (local: string): string => (local ? new Date(local).toISOString() : '');

function query(f: JobFilters, limit: number, cursor?: string): string {
  const p = new URLSearchParams({ limit: String(limit) });
  if (f.state) p.set('state', f.state);
  if (f.door) p.set('door', f.door);
  if (f.q.trim()) p.set('q', f.q.trim());
  if (f.from) p.set('from', toIso(f.from));
  if (f.to) p.set('to', toIso(f.to));
  if (cursor) p.set('cursor', cursor);
  return `/v1/jobs?${p.toString()}`;
}

/** The newest `count` jobs under the filters: pages of at most MAX_PAGE, each from the one before's nextCursor. */
async function newest(f: JobFilters, count: number): Promise<JobList> {
  let list = await getJson<JobList>(query(f, Math.min(count, MAX_PAGE)));
  while (list.nextCursor && list.jobs.length < count) {
    const next = await getJson<JobList>(query(f, Math.min(count - list.jobs.length, MAX_PAGE), list.nextCursor));
    list = { ...next, jobs: [...list.jobs, ...next.jobs], count: list.jobs.length + next.jobs.length };
  }
  return list;
}

const parties = (j: Job): string =>
  [j.metadata?.localParty?.username, j.metadata?.localParty?.phoneNumber, j.metadata?.remoteParty?.phoneNumber]
    .filter(Boolean)
    .join(' · ');

const when = (iso: string | undefined): string => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '');

export function JobsPage({ hash }: { hash: string }) {
  const filters = filtersFrom(hash);
  const [list, setList] = useState<JobList | undefined>();
  const [error, setError] = useState<unknown>();
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [note, setNote] = useState('');
  const [search, setSearch] = useState(filters.q);
  const [more, setMore] = useState(false);
  const key = JSON.stringify(filters);
  const loaded = useRef<number>(0);
  // How many rows the operator has asked to see: the first page, plus each page "Show more" added.
  const shown = useRef(PAGE);

  const load = async (): Promise<void> => {
    try {
      const started = performance.now();
      const count = shown.current;
      const l = await newest(filters, count);
      // The filters changed, or "Show more" added rows, meanwhile: this answer is already out of date.
      if (JSON.stringify(filtersFrom(location.hash)) !== key || shown.current !== count) return;
      setList(l);
      setError(undefined);
      if (loaded.current === 0) {
        loaded.current = performance.now() - started;
        document.body.dataset.jobsLoadedMs = String(Math.round(loaded.current));
      }
    } catch (e) {
      setError(e);
    }
  };
  /** The next page, from the last one's nextCursor, added below the rows shown. */
  const showMore = async (): Promise<void> => {
    if (!list?.nextCursor) return;
    setMore(true);
    try {
      const next = await getJson<JobList>(query(filters, PAGE, list.nextCursor));
      const have = new Set(list.jobs.map((j) => j.jobId));
      const jobs = [...list.jobs, ...next.jobs.filter((j) => !have.has(j.jobId))];
      shown.current = jobs.length;
      setList({ ...next, jobs, count: jobs.length });
    } catch (e) {
      setError(e);
    } finally {
      setMore(false);
    }
  };

  useEffect(() => {
    setSearch(filters.q);
    setSelected(new Set());
    shown.current = PAGE;
  }, [key]);
  useEffect(() => {
    if (needsKey(error)) return undefined; // no polling until a key is given
    void load();
    // New jobs appear and states change while the page is open.
    const timer = setInterval(() => void load(), REFRESH_MS);
    return () => clearInterval(timer);
  }, [key, needsKey(error)]);

  const set = (change: Partial<JobFilters>): void => {
    location.hash = hashFor({ ...filters, ...change });
  };
  // The search is applied a moment after the last keystroke, so that typing does not flood the history.
  useEffect(() => {
    if (search === filters.q) return undefined;
    const timer = setTimeout(() => set({ q: search }), 300);
    return () => clearTimeout(timer);
  }, [search]);

  if (needsKey(error)) return <SignIn />;
  const jobs = list?.jobs ?? [];
  const counts = list?.counts;
  const filtered = Boolean(filters.state || filters.door || filters.q || filters.from || filters.to);

  const retryFailed = async (): Promise<void> => {
    // Every failed job under the current filters, not only the loaded page.
    const targets: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await getJson<JobList>(query({ ...filters, state: 'failed' }, MAX_PAGE, cursor));
      targets.push(...page.jobs.filter((j) => j.state === 'failed').map((j) => j.jobId));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    if (targets.length === 0) return setNote('No failed job matches these filters.');
    if (!confirm(`Retry ${targets.length} failed job${targets.length === 1 ? '' : 's'} (with the current filters)?`))
      return;
    let done = 0;
    for (const id of targets)
      await call(`/v1/jobs/${id}/retry`, { method: 'POST' }, { okStatuses: 'any' }).then((r) => r.ok && done++);
    setNote(`${done} of ${targets.length} failed job${targets.length === 1 ? '' : 's'} sent back to the queue.`);
    void load();
  };
  const deleteSelected = async (): Promise<void> => {
    const ids = [...selected];
    if (!confirm(`Delete ${ids.length} job${ids.length === 1 ? '' : 's'} and their files? They will not be delivered.`))
      return;
    let done = 0;
    for (const id of ids)
      await call(`/v1/jobs/${id}`, { method: 'DELETE' }, { okStatuses: 'any' }).then((r) => r.ok && done++);
    setSelected(new Set());
    setNote(`${done} of ${ids.length} job${ids.length === 1 ? '' : 's'} deleted.`);
    void load();
  };
  const open = (j: Job): void => {
    location.hash = `#/jobs/${j.jobId}`;
  };

  return (
    <section>
      <h2>Jobs</h2>
      <div class="chips" role="group" aria-label="State" data-testid="state-chips">
        {(['', ...JOB_STATES] as const).map((s) => (
          <button
            type="button"
            key={s || 'all'}
            class={`chip ${filters.state === s ? 'on' : ''}`}
            aria-pressed={filters.state === s}
            data-state={s || 'all'}
            onClick={() => set({ state: s })}
          >
            {s || 'all'}
            {counts && (
              <span class="count">
                {s ? counts[s as JobState] : JOB_STATES.reduce((n, st) => n + (counts[st] ?? 0), 0)}
              </span>
            )}
          </button>
        ))}
      </div>
      <div class="filters">
        <label>
          Search{' '}
          <input
            name="q"
            type="search"
            placeholder="pbxCallId, phone number, user, Imagicle id"
            value={search}
            onInput={(e) => setSearch(e.currentTarget.value)}
          />
        </label>
        <label>
          Door{' '}
          <select name="door" value={filters.door} onChange={(e) => set({ door: e.currentTarget.value })}>
            <option value="">any</option>
            {DOORS.map((d) => (
              <option value={d} key={d}>
                {d}
              </option>
            ))}
          </select>
        </label>
        <label>
          Started from{' '}
          <input
            name="from"
            type="datetime-local"
            value={filters.from}
            onChange={(e) => set({ from: e.currentTarget.value })}
          />
        </label>
        <label>
          to{' '}
          <input
            name="to"
            type="datetime-local"
            value={filters.to}
            onChange={(e) => set({ to: e.currentTarget.value })}
          />
        </label>
      </div>
      <div class="actions">
        <button type="button" onClick={() => void retryFailed().catch(setError)}>
          Retry all failed{filtered ? ' (filtered)' : ''}
        </button>
        <button type="button" disabled={selected.size === 0} onClick={() => void deleteSelected().catch(setError)}>
          Delete selected ({selected.size})
        </button>
        <span class="muted" data-testid="jobs-count">
          {list ? `${jobs.length} shown${list.nextCursor ? ', more below' : ''}` : 'loading…'}
        </span>
      </div>
      {note && (
        <p class="note" role="status">
          {note}
        </p>
      )}
      <ErrorNote error={error} />
      {list && jobs.length === 0 ? (
        <p class="empty" data-testid="jobs-empty">
          {filtered
            ? 'No job matches these filters.'
            : 'No jobs yet: uploads, imports and the watched folder make them.'}
          {filters.q && (
            <> Nothing found for “{filters.q}” (searched: pbxCallId, phone numbers, username, Imagicle id).</>
          )}
        </p>
      ) : (
        <table data-testid="jobs" class="stack">
          <thead>
            <tr>
              <th aria-label="Select" />
              <th>Started</th>
              <th>State</th>
              <th>Door</th>
              <th>pbxCallId</th>
              <th>Parties</th>
              <th>Decision</th>
              <th>Last error</th>
            </tr>
          </thead>
          <tbody>
            {jobs.map((j) => (
              <tr
                key={j.jobId}
                data-job={j.jobId}
                tabIndex={0}
                class="row-link"
                onClick={(e) => {
                  if ((e.target as HTMLElement).closest('input, a')) return;
                  open(j);
                }}
                onKeyDown={(e) => {
                  if (e.key === 'Enter' && !(e.target as HTMLElement).closest('input')) open(j);
                }}
              >
                <td data-label="Select">
                  <input
                    type="checkbox"
                    aria-label={`select job ${j.jobId}`}
                    checked={selected.has(j.jobId)}
                    onChange={(e) => {
                      const next = new Set(selected);
                      if (e.currentTarget.checked) next.add(j.jobId);
                      else next.delete(j.jobId);
                      setSelected(next);
                    }}
                  />
                </td>
                <td data-label="Started">
                  <a href={`#/jobs/${j.jobId}`}>{when(j.metadata?.startDateTime ?? j.startDateTime)}</a>
                </td>
                <td data-label="State">
                  <span class={`state ${j.state}`}>
                    {j.lastError?.ambiguous && j.state === 'failed' ? 'held' : j.state}
                  </span>
                </td>
                <td data-label="Door">{j.door ?? 'http'}</td>
                <td data-label="pbxCallId">{j.pbxCallId}</td>
                <td data-label="Parties">{parties(j)}</td>
                <td data-label="Decision">{j.decision}</td>
                <td data-label="Last error">{j.lastError ? explain(j.lastError.message) : ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {list?.nextCursor && (
        <button type="button" data-testid="more" disabled={more} onClick={() => void showMore()}>
          Show {PAGE} more
        </button>
      )}
    </section>
  );
}
