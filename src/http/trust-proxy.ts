/**
 * TRUST_PROXY: which reverse proxies may say who the client is (X-Forwarded-For). Unset or `false`: none, the
 * socket's address is the client's (a proxy in front makes every caller one address, for the failed-login
 * throttle and the logs). `true` trusts any sender, so a client could claim any address: only behind a proxy
 * that strips the header. Prefer the proxy's addresses, subnets or one of Express's names (`loopback`,
 * `linklocal`, `uniquelocal`), comma-separated, or a number of hops. The value goes to Express's
 * `trust proxy` setting as is.
 */
import { isIP } from 'node:net';

export type TrustProxy = boolean | number | string[];

const NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

function isAddressOrSubnet(entry: string): boolean {
  if (NAMES.has(entry)) return true;
  const [address, bits, extra] = entry.split('/');
  if (extra !== undefined || !address) return false;
  const family = isIP(address);
  if (family === 0) return false;
  if (bits === undefined) return true;
  if (!/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

/** The setting, or a problem naming the entry that is not an address, a subnet or a name. */
export function parseTrustProxy(text: string | undefined): { value: TrustProxy; problem?: string } {
  if (text === undefined || text === 'false') return { value: false };
  if (text === 'true') return { value: true };
  if (/^\d{1,3}$/.test(text)) return { value: Number(text) };
  const entries = text
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  const bad = entries.find((e) => !isAddressOrSubnet(e));
  if (bad !== undefined || entries.length === 0) {
    return {
      value: false,
      problem:
        `TRUST_PROXY: "${(bad ?? text).slice(0, 64)}" is not an address, a subnet (a.b.c.d/n), loopback, ` +
        'linklocal, uniquelocal, a number of hops, true or false',
    };
  }
  return { value: entries };
}
