/** The operator console: overview, jobs, job detail, try a file. Hash routes; all data from /v1 and /metrics. */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { apiKey } from './api';
import { Overview } from './overview';
import { JobsPage } from './jobs';
import { JobDetail } from './job-detail';
import { TryFile } from './try-file';
import './styles.css';

function useHash(): string {
  const [hash, setHash] = useState(location.hash || '#/');
  useEffect(() => {
    const onChange = (): void => setHash(location.hash || '#/');
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return hash;
}

/** Shown when the gateway asks for credentials: the key stays in this tab's sessionStorage only. */
function KeyForm({ onSaved }: { onSaved: () => void }) {
  const [value, setValue] = useState(apiKey.get());
  return (
    <form
      class="key"
      data-testid="key-form"
      onSubmit={(e) => {
        e.preventDefault();
        apiKey.set(value.trim());
        onSaved();
      }}
    >
      <label>
        API key{' '}
        <input
          type="password"
          name="apiKey"
          autocomplete="off"
          value={value}
          onInput={(e) => setValue(e.currentTarget.value)}
        />
      </label>
      <button type="submit">Use key</button>
      {apiKey.get() && (
        <button type="button" onClick={() => (apiKey.set(''), setValue(''), onSaved())}>
          Forget key
        </button>
      )}
    </form>
  );
}

function App() {
  const hash = useHash();
  const [generation, setGeneration] = useState(0);
  const route = hash.slice(1);
  const job = /^\/jobs\/([\w-]+)$/.exec(route);
  let page;
  if (job) page = <JobDetail id={job[1]!} key={`${job[1]}-${generation}`} />;
  else if (route.startsWith('/jobs')) page = <JobsPage hash={hash} key={generation} />;
  else if (route.startsWith('/try')) page = <TryFile />;
  else page = <Overview key={generation} />;
  return (
    <>
      <header>
        <h1>Imagicle gateway</h1>
        <nav>
          <a href="#/" class={route === '/' ? 'active' : ''}>
            Overview
          </a>
          <a href="#/jobs" class={route.startsWith('/jobs') ? 'active' : ''}>
            Jobs
          </a>
          <a href="#/try" class={route.startsWith('/try') ? 'active' : ''}>
            Try a file
          </a>
        </nav>
        <KeyForm onSaved={() => setGeneration((g) => g + 1)} />
      </header>
      <main>{page}</main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
