/**
 * Caller credentials as configured (GATEWAY_API_KEYS, GATEWAY_BASIC_USERS):
 * their types and the parsing config.ts uses. Checking them is http/auth.ts.
 */
type BasicSecret = { kind: 'plain'; password: string } | { kind: 'sha256'; hex: string };

export interface AccessSettings {
  readonly apiKeys: readonly string[];
  /** Operator keys (GATEWAY_ADMIN_KEYS): they authenticate like API keys and see every owner's jobs. */
  readonly adminKeys?: readonly string[];
  readonly basicUsers: ReadonlyArray<{ readonly username: string; readonly secret: BasicSecret }>;
  readonly allowAnonymous: boolean;
}

const MIN_API_KEY_LENGTH = 16;
const MIN_PASSWORD_LENGTH = 8;

/** Comma-separated API keys; problems name the entry's position, never the key. */
export function parseApiKeys(text: string): { keys: string[]; problems: string[] } {
  const keys: string[] = [];
  const problems: string[] = [];
  text
    .split(',')
    .map((k) => k.trim())
    .forEach((key, i) => {
      if (key === '') return;
      if (key.length < MIN_API_KEY_LENGTH)
        problems.push(`key ${i + 1} is shorter than ${MIN_API_KEY_LENGTH} characters`);
      else if ([...key].some((c) => c <= ' ' || c === '\x7f'))
        problems.push(`key ${i + 1} contains spaces or control characters`);
      else keys.push(key);
    });
  return { keys, problems };
}

/** Parses `user:password` / `user:sha256:<hex>` entries (GATEWAY_BASIC_USERS); problems name the entry, never the secret. */
export function parseBasicUsers(text: string): { users: AccessSettings['basicUsers']; problems: string[] } {
  const users: Array<{ username: string; secret: BasicSecret }> = [];
  const problems: string[] = [];
  text
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
    .forEach((entry, i) => {
      const colon = entry.indexOf(':');
      const username = colon < 0 ? '' : entry.slice(0, colon);
      const rest = colon < 0 ? '' : entry.slice(colon + 1);
      if (colon <= 0 || rest === '') {
        problems.push(`entry ${i + 1} must be user:password or user:sha256:<64 hex digits>`);
        return;
      }
      const hashed = /^sha256:([0-9a-fA-F]{64})$/.exec(rest);
      if (/^sha256:/.test(rest) && !hashed) {
        problems.push(`entry ${i + 1} (${username}): sha256: must be followed by 64 hex digits`);
        return;
      }
      if (!hashed && rest.length < MIN_PASSWORD_LENGTH) {
        problems.push(
          `entry ${i + 1} (${username}): the password must have at least ${MIN_PASSWORD_LENGTH} characters`,
        );
        return;
      }
      if (users.some((u) => u.username === username)) {
        problems.push(`entry ${i + 1} (${username}): the user appears more than once`);
        return;
      }
      users.push({
        username,
        secret: hashed ? { kind: 'sha256', hex: hashed[1]!.toLowerCase() } : { kind: 'plain', password: rest },
      });
    });
  return { users, problems };
}
