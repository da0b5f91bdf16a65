/**
 * A job's webhooks (issue 23): endpoint (host only), event, attempts, last status, next attempt; a failed or gone
 * one can be sent again (POST /v1/webhooks/deliveries/{id}/resend), with the outcome said next to the button.
 */
import { useState } from 'preact/hooks';
import { call } from './api';
import type { JobWebhook } from './types';

const when = (iso: string | undefined): string => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '');

function lastAnswer(w: JobWebhook): string {
  if (w.lastStatus !== undefined) return String(w.lastStatus);
  return w.lastError ?? (w.attempts === 0 ? 'not tried yet' : '');
}

export function JobWebhooks({ webhooks, onChange }: { webhooks: JobWebhook[]; onChange: () => void }) {
  const [notes, setNotes] = useState<Record<string, { text: string; error: boolean }>>({});
  const [busy, setBusy] = useState<string | undefined>();
  const resend = async (w: JobWebhook): Promise<void> => {
    setBusy(w.id);
    try {
      await call(`/v1/webhooks/deliveries/${encodeURIComponent(w.id)}/resend`, { method: 'POST' });
      setNotes((n) => ({ ...n, [w.id]: { text: 'Sent again: pending, a new attempt follows.', error: false } }));
      onChange();
    } catch (e) {
      const text = e instanceof Error ? e.message.replace(/^\d+: /, '') : String(e);
      setNotes((n) => ({ ...n, [w.id]: { text: `Not re-sent: ${text}`, error: true } }));
    } finally {
      setBusy(undefined);
    }
  };
  if (webhooks.length === 0) return <p class="muted">No webhook for this job (none configured for its key).</p>;
  return (
    <table data-testid="webhooks" class="stack">
      <thead>
        <tr>
          <th>Endpoint</th>
          <th>Event</th>
          <th>State</th>
          <th>Attempts</th>
          <th>Last status</th>
          <th>Last attempt</th>
          <th>Next attempt</th>
          <th aria-label="Action" />
        </tr>
      </thead>
      <tbody>
        {webhooks.map((w) => (
          <tr key={w.id} data-webhook={w.id}>
            <td data-label="Endpoint">
              {w.endpoint}
              {w.kind === 'callback' ? ' (callbackUrl)' : ''}
            </td>
            <td data-label="Event">{w.event}</td>
            <td data-label="State">
              <span class={`state ${w.state === 'sent' ? 'delivered' : w.state === 'pending' ? 'ready' : 'failed'}`}>
                {w.state}
              </span>
            </td>
            <td data-label="Attempts" class="num" data-testid="webhook-attempts">
              {w.attempts}
            </td>
            <td data-label="Last status">{lastAnswer(w)}</td>
            <td data-label="Last attempt">{when(w.lastAttemptAt)}</td>
            <td data-label="Next attempt">{w.state === 'pending' ? when(w.nextAttemptAt) : ''}</td>
            <td data-label="Action">
              {(w.state === 'failed' || w.state === 'gone') && (
                <button type="button" disabled={busy === w.id} onClick={() => void resend(w)}>
                  Re-send
                </button>
              )}
              {notes[w.id] && (
                <span class={notes[w.id]!.error ? 'error' : 'muted'} role="status" data-testid="webhook-note">
                  {' '}
                  {notes[w.id]!.text}
                </span>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
