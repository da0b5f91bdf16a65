/** An API failure in words, with a hint when the gateway wants credentials. */
import { ApiError, explain } from './api';

export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  const text = explain(error instanceof Error ? error.message : String(error));
  return (
    <p class="error" role="alert">
      {text}
      {error instanceof ApiError && error.status === 401 ? ' (enter an API key above)' : ''}
    </p>
  );
}
