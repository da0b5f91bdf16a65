import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { parseTrustProxy } from '../../src/http/trust-proxy.js';

describe('TRUST_PROXY', () => {
  it('reads false, true, hops and lists of addresses, subnets and names', () => {
    expect(parseTrustProxy(undefined)).toEqual({ value: false });
    expect(parseTrustProxy('false')).toEqual({ value: false });
    expect(parseTrustProxy('true')).toEqual({ value: true });
    expect(parseTrustProxy('2')).toEqual({ value: 2 });
    expect(parseTrustProxy('loopback, 10.0.0.0/8,fd00::/8, 192.0.2.1')).toEqual({
      value: ['loopback', '10.0.0.0/8', 'fd00::/8', '192.0.2.1'],
    });
  });

  it('names the entry that is not an address, and the configuration refuses it', () => {
    for (const bad of ['proxy.example.com', '10.0.0.0/33', '10.0.0/8', 'loopback,yes', ',']) {
      expect(parseTrustProxy(bad).problem, bad).toMatch(/^TRUST_PROXY: /);
    }
    expect(() => loadConfig({ TRUST_PROXY: '10.0.0.0/33' })).toThrow(/TRUST_PROXY: "10.0.0.0\/33"/);
    expect(loadConfig({ TRUST_PROXY: 'uniquelocal' }).trustProxy).toEqual(['uniquelocal']);
  });
});
