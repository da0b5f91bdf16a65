/**
 * The jobs list: paged by the server (newest first), filtered by state, door, start time and a search (pbxCallId,
 * a phone number, the username or an Imagicle id), the filters kept in the URL, refreshed every 5 s, bulk actions.
 * Against a gateway whose jobs API does not page yet, it pages and sorts the whole list itself.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { call, explain, getJson, needsKey } from './api';
import { ErrorNote } from './error-note';
import { SignIn } from './sign-in';
import { JOB_STATES, type Job, type JobList, type JobState } from './types';

const PAGE = 50;
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
  if (f.q.trim()) {
    p.set('q', f.q.trim());
    p.set('pbxCallId', f.q.trim()); // the spool's first API searched this field only
  }
  if (f.from) p.set('from', toIso(f.from));
  if (f.to) p.set('to', toIso(f.to));
  if (cursor) p.set('cursor', cursor);
  return `/v1/jobs?${p.toString()}`;
}

/** The first jobs API answers every job, oldest first, without counts: page and count it here. */
function normalise(list: JobList, limit: number): JobList & { paged: boolean } {
  if (list.nextCursor !== undefined) return { ...list, paged: true };
  const newest = [...list.jobs].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  return { ...list, jobs: newest.slice(0, limit), nextCursor: newest.length > limit ? 'more' : null, paged: false };
}

const parties = (j: Job): string =>
  [j.metadata?.localParty?.username, j.metadata?.localParty?.phoneNumber, j.metadata?.remoteParty?.phoneNumber]
    .filter(Boolean)
    .join(' · ');

const when = (iso: string | undefined): string => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '');

export function JobsPage({ hash }: { hash: string }) {
  const filters = filtersFrom(hash);
  const [list, setList] = useState<(JobList & { paged: boolean }) | undefined>();
  const [limit, setLimit] = useState(PAGE);
  const [error, setError] = useState<unknown>();
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [note, setNote] = useState('');
  const [search, setSearch] = useState(filters.q);
  const key = JSON.stringify(filters);
  const loaded = useRef<number>(0);

  const load = async (): Promise<void> => {
    try {
      const started = performance.now();
      let raw = await getJson<JobList>(query(filters, limit));
      if (raw.nextCursor === undefined) {
        // The spool's first API: no counts, no paging. Count the states from the whole list, filter here.
        const all = filters.state ? await getJson<JobList>(query({ ...filters, state: '' }, limit)) : raw;
        const counts = Object.fromEntries(JOB_STATES.map((st) => [st, 0])) as Record<JobState, number>;
        for (const j of all.jobs) counts[j.state as JobState] += 1;
        raw = { ...raw, counts };
      }
      const l = normalise(raw, limit);
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

  useEffect(() => {
    setSearch(filters.q);
    setSelected(new Set());
  }, [key]);
  useEffect(() => {
    if (needsKey(error)) return undefined; // no polling until a key is given
    void load();
    // New jobs appear and states change while the page is open.
    const timer = setInterval(() => void load(), REFRESH_MS);
    return () => clearInterval(timer);
  }, [key, limit, needsKey(error)]);

  const set = (change: Partial<JobFilters>): void => {
    location.hash = hashFor({ ...filters, ...change });
    setLimit(PAGE);
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
      const page = await getJson<JobList>(query({ ...filters, state: 'failed' }, 500, cursor));
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
        <button type="button" data-testid="more" onClick={() => setLimit((n) => Math.min(n + PAGE, 500))}>
          Show {PAGE} more
        </button>
      )}
    </section>
  );
}
