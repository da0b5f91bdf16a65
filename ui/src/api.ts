/** The console's only way to the gateway: its public APIs, with the operator's API key when one is needed. */
const KEY = 'imagicle-gateway-api-key';

export const apiKey = {
  get: (): string => sessionStorage.getItem(KEY) ?? '',
  set: (value: string): void => (value ? sessionStorage.setItem(KEY, value) : sessionStorage.removeItem(KEY)),
};

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The gateway serves the console at /ui/: the APIs are at the root of the same origin. */
export async function call(
  path: string,
  init: RequestInit = {},
  options: { okStatuses?: 'any' } = {},
): Promise<Response> {
  const headers = new Headers(init.headers);
  const key = apiKey.get();
  if (key) headers.set('X-Api-Key', key);
  const res = await fetch(path, { ...init, headers });
  if (!res.ok && (options.okStatuses !== 'any' || res.status === 401)) {
    let message = `${res.status} ${res.statusText}`;
    try {
      const body = (await res.clone().json()) as { message?: string };
      if (body.message) message = `${res.status}: ${body.message}`;
    } catch {
      // not JSON: the status line says enough
    }
    throw new ApiError(res.status, message);
  }
  return res;
}

export async function getJson<T>(path: string): Promise<T> {
  return (await (await call(path)).json()) as T;
}

/** A Prometheus sample: name, labels, value (enough for the overview's counters and gauges). */
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseMetrics(text: string): PromSample[] {
  const samples: PromSample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const pair of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The gateway wants credentials: the pages show the sign-in prompt and stop polling until a key is given. */
export const needsKey = (error: unknown): boolean => error instanceof ApiError && error.status === 401;

/** Seconds of an ISO 8601 duration such as PT4M4.28S (0 when it does not parse). */
export function isoSeconds(iso: string | undefined): number {
  const m = /^PT(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?$/.exec(iso ?? '');
  return m ? Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0) : 0;
}

/**
 * An error message for a person: ffmpeg's own words ("input Invalid argument") are kept as the detail, never as
 * the only explanation.
 */
export function explain(message: string): string {
  if (/invalid argument|invalid data|cannot be decoded|error while decoding|could not find codec/i.test(message)) {
    return `The audio could not be decoded: the file is damaged, cut short, or not what its name says. (ffmpeg: ${message})`;
  }
  return message;
}
