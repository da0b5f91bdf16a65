/**
 * `watch` on a terminal: the same readable lines as `import` ("delivered:
 * path", "failed: path: why") instead of pino's JSON. A destination for
 * the logger: each JSON line is turned into one line of text.
 */
import type { DestinationStream } from 'pino';

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

/** Fields every line has, or that a person does not need to read. */
const HIDDEN = new Set(['level', 'time', 'msg', 'service', 'pid', 'hostname', 'component', 'file', 'status', 'error']);

const clock = (time: unknown): string =>
  typeof time === 'string' ? time.slice(11, 19) : new Date().toISOString().slice(11, 19);

function rest(entry: Record<string, unknown>): string {
  const fields = Object.entries(entry)
    .filter(([key, value]) => !HIDDEN.has(key) && value !== undefined && value !== null)
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  return fields.length > 0 ? ` (${fields.join(', ')})` : '';
}

export function readableLine(json: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const time = clock(entry.time);
  const msg = typeof entry.msg === 'string' ? entry.msg : '';
  const file = typeof entry.file === 'string' ? entry.file : undefined;
  const error = typeof entry.error === 'string' ? entry.error : undefined;
  const status = typeof entry.status === 'string' ? entry.status : undefined;
  if (file && msg === 'watch: delivered') {
    const { movedTo, parts, ids } = entry;
    const verb = status === 'delivered' ? 'delivered' : (status ?? 'delivered');
    return `${time} ${verb}: ${file} (${String(parts ?? '?')} part(s), Imagicle ${Array.isArray(ids) ? ids.join(' ') : ''}) → ${String(movedTo)}\n`;
  }
  if (file && msg === 'watch: failed for good')
    return `${time} ${status ?? 'failed'}: ${file}: ${error ?? ''} → ${String(entry.movedTo)}\n`;
  if (file && msg === 'watch: not delivered, will retry')
    return `${time} ${status === 'waiting' ? 'waiting for Imagicle' : 'not delivered'}: ${file}: ${error ?? ''}; tried again in ${Math.round(Number(entry.retryInMs) / 1000)} s\n`;
  const level = LEVELS[Number(entry.level)] ?? 'info';
  const prefix = level === 'info' ? '' : `${level.toUpperCase()} `;
  const err = entry.err as { message?: unknown } | undefined;
  const because = err && typeof err.message === 'string' ? `: ${err.message}` : '';
  const { err: _err, ...others } = entry;
  void _err;
  return `${time} ${prefix}${msg}${because}${file ? ` ${file}` : ''}${error ? `: ${error}` : ''}${rest(others)}\n`;
}

export function readableDestination(stream: NodeJS.WritableStream): DestinationStream {
  return { write: (line: string) => void stream.write(readableLine(line)) };
}
