/**
 * Which addresses a webhook may reach. Private (RFC 1918, ULA), loopback,
 * link-local (cloud metadata at 169.254.169.254), CGNAT, unspecified,
 * multicast and reserved ranges are refused unless an operator allowed them
 * (WEBHOOK_PRIVATE_NETWORKS, or an endpoint's allowPrivate). The check runs
 * on the address a name RESOLVED to, inside the connection's own lookup
 * (sender.ts), so that a name that answers differently the second time (DNS
 * rebinding) still cannot reach a refused address.
 */
import { BlockList, isIP } from 'node:net';

const REFUSED_V4 = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const;

const REFUSED_V6 = [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const;

const refused = new BlockList();
for (const [net, prefix] of REFUSED_V4) refused.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of REFUSED_V6) refused.addSubnet(net, prefix, 'ipv6');

/** An IPv4 address written as IPv6 (::ffff:127.0.0.1) is judged as the IPv4 address it is. */
function unmapped(address: string): { address: string; family: 'ipv4' | 'ipv6' } {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (m) return { address: m[1]!, family: 'ipv4' };
  return { address, family: isIP(address) === 6 ? 'ipv6' : 'ipv4' };
}

/** Parses "10.0.0.0/8, fd00::/8, 127.0.0.1" into a block list; returns the entries it could not read. */
export function networksOf(cidrs: readonly string[]): { list: BlockList; problems: string[] } {
  const list = new BlockList();
  const problems: string[] = [];
  for (const entry of cidrs) {
    const [net = '', prefixText] = entry.split('/');
    const family = isIP(net);
    const prefix = prefixText === undefined ? (family === 6 ? 128 : 32) : Number(prefixText);
    if (family === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 6 ? 128 : 32)) {
      problems.push(`"${entry}" is not an address or network (CIDR, e.g. 10.1.0.0/16)`);
      continue;
    }
    list.addSubnet(net, prefix, family === 6 ? 'ipv6' : 'ipv4');
  }
  return { list, problems };
}

export interface AddressPolicy {
  /** Networks reachable although private (WEBHOOK_PRIVATE_NETWORKS). */
  allowed: BlockList;
  /** Every private address is allowed (an operator's endpoint with allowPrivate). */
  allowAllPrivate: boolean;
}

/** Undefined when the address may be reached; else why not. */
export function addressProblem(address: string, policy: AddressPolicy): string | undefined {
  const { address: a, family } = unmapped(address);
  if (isIP(a) === 0) return `${address} is not an IP address`;
  if (!refused.check(a, family)) return undefined;
  if (policy.allowAllPrivate || policy.allowed.check(a, family)) return undefined;
  return `${address} is a private, loopback, link-local or reserved address`;
}

/** Whether a host name is in WEBHOOK_ALLOWED_HOSTS: an exact name, or `*.example.com` for any name below it. */
export function hostAllowed(hostname: string, allowedHosts: readonly string[]): boolean {
  const host = hostname
    .toLowerCase()
    .replace(/\.$/, '')
    .replace(/^\[(.*)\]$/, '$1');
  return allowedHosts.some((entry) => {
    const pattern = entry.toLowerCase().replace(/\.$/, '');
    if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1;
    return host === pattern.replace(/^\[(.*)\]$/, '$1');
  });
}

/** The host of a URL without brackets (an IPv6 literal) and without a trailing dot. */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
}
