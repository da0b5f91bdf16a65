/** Webhooks' pure parts: signatures (checked by the standardwebhooks package), addresses, hosts, backoff, settings, callbackUrl. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { GatewayError } from '../../src/errors.js';
import { addressProblem, hostAllowed, networksOf } from '../../src/webhooks/address.js';
import { takeCallbackUrl, type CallbackPolicy } from '../../src/webhooks/callback.js';
import { backoffDelay } from '../../src/webhooks/delivery.js';
import { signatureOf, signedHeaders } from '../../src/webhooks/signature.js';
import { systemResolver, type Resolver } from '../../src/webhooks/sender.js';
import { DEFAULT_WEBHOOK_SETTINGS, parseWebhooks, webhooksFor } from '../../src/webhooks/settings.js';
import { newSecret } from '../helpers/webhook-receiver.js';

describe('Standard Webhooks signatures', () => {
  it('verify with the standardwebhooks package, every secret of a rotation', () => {
    const [a, b] = [newSecret(), newSecret()];
    const body = JSON.stringify({ type: 'recording.delivered', data: { jobId: 'j1', note: 'é €' } });
    const headers = signedHeaders([a, b], 'evt-1', body, Date.now());
    expect(new Webhook(a).verify(body, { ...headers })).toMatchObject({ type: 'recording.delivered' });
    expect(new Webhook(b).verify(body, { ...headers })).toMatchObject({ data: { note: 'é €' } });
    expect(() => new Webhook(newSecret()).verify(body, { ...headers })).toThrow();
    expect(() => new Webhook(a).verify(`${body} `, { ...headers })).toThrow();
  });

  it('is the signature the package itself makes', () => {
    const secret = newSecret();
    const at = new Date('2026-12-06T20:00:00Z');
    expect(signatureOf(secret, 'msg_1', at.getTime() / 1000, '{"a":1}')).toBe(
      new Webhook(secret).sign('msg_1', at, '{"a":1}'),
    );
  });
});

describe('addresses webhooks may reach', () => {
  const strict = { allowed: networksOf([]).list, allowAllPrivate: false };
  it.each([
    ['127.0.0.1', false],
    ['127.9.9.9', false],
    ['10.1.2.3', false],
    ['172.20.0.1', false],
    ['192.168.1.1', false],
    ['169.254.169.254', false],
    ['100.64.0.1', false],
    ['0.0.0.0', false],
    ['::1', false],
    ['::', false],
    ['fe80::1', false],
    ['fd00::1', false],
    ['::ffff:127.0.0.1', false],
    ['::ffff:10.0.0.1', false],
    ['224.0.0.1', false],
    ['93.184.215.14', true],
    ['8.8.8.8', true],
    ['2606:4700::1111', true],
  ])('%s allowed: %s', (address, ok) => {
    expect(addressProblem(address, strict) === undefined).toBe(ok);
  });

  it('allows the private networks an operator lists, and all of them for allowPrivate', () => {
    const { list, problems } = networksOf(['10.1.0.0/16', '127.0.0.1', 'fd00::/8']);
    expect(problems).toEqual([]);
    const policy = { allowed: list, allowAllPrivate: false };
    expect(addressProblem('10.1.2.3', policy)).toBeUndefined();
    expect(addressProblem('10.2.0.1', policy)).toBeDefined();
    expect(addressProblem('127.0.0.1', policy)).toBeUndefined();
    expect(addressProblem('127.0.0.2', policy)).toBeDefined();
    expect(addressProblem('fd12::1', policy)).toBeUndefined();
    expect(addressProblem('192.168.0.1', { allowed: list, allowAllPrivate: true })).toBeUndefined();
    expect(networksOf(['10.0.0.0/33', 'nope']).problems).toHaveLength(2);
  });

  it('matches WEBHOOK_ALLOWED_HOSTS exactly or by *.domain', () => {
    const hosts = ['hooks.example.com', '*.tenant.example.net', '203.0.113.7'];
    expect(hostAllowed('hooks.example.com', hosts)).toBe(true);
    expect(hostAllowed('HOOKS.example.com.', hosts)).toBe(true);
    expect(hostAllowed('evilhooks.example.com', hosts)).toBe(false);
    expect(hostAllowed('a.tenant.example.net', hosts)).toBe(true);
    expect(hostAllowed('tenant.example.net', hosts)).toBe(false);
    expect(hostAllowed('a.tenant.example.net.evil.com', hosts)).toBe(false);
    expect(hostAllowed('203.0.113.7', hosts)).toBe(true);
  });
});

describe('backoff', () => {
  it('grows exponentially to the cap, with jitter between half and all of it', () => {
    const policy = { minDelayMs: 1000, maxDelayMs: 60_000 };
    expect(backoffDelay(policy, 1, () => 0)).toBe(500);
    expect(backoffDelay(policy, 1, () => 1)).toBe(1000);
    expect(backoffDelay(policy, 4, () => 1)).toBe(8000);
    expect(backoffDelay(policy, 40, () => 0)).toBe(30_000);
    expect(backoffDelay(policy, 40, () => 1)).toBe(60_000);
  });
});

describe('webhook settings', () => {
  const secret = newSecret();
  it('reads endpoints per owner, a catch-all, and callback signing', () => {
    const { owners, problems } = parseWebhooks(
      JSON.stringify({
        'key:0123abcd4567': {
          endpoints: [{ url: 'https://hooks.example.com/a', secret, retrying: true }],
          callback: { secrets: [secret, newSecret()] },
        },
        '*': [{ url: 'https://ops.example.com/all', secrets: [secret], events: ['recording.failed'] }],
      }),
      'WEBHOOKS',
    );
    expect(problems).toEqual([]);
    const settings = { ...DEFAULT_WEBHOOK_SETTINGS, owners };
    const tenant = webhooksFor(settings, 'key:0123abcd4567+auth:0011223344556677');
    expect(tenant?.endpoints[0]).toMatchObject({ secrets: [secret], allowPrivate: false });
    expect(tenant?.endpoints[0]?.events).toEqual([
      'recording.delivered',
      'recording.failed',
      'recording.held',
      'recording.retrying',
    ]);
    expect(tenant?.callback?.secrets).toHaveLength(2);
    expect(webhooksFor(settings, 'basic:alice')?.endpoints[0]?.events).toEqual(['recording.failed']);
  });

  it('lists every problem: bad JSON, keys, URLs, secrets, events', () => {
    expect(parseWebhooks('{', 'WEBHOOKS').problems).toEqual(['WEBHOOKS: not valid JSON']);
    const { problems } = parseWebhooks(
      JSON.stringify({
        'my-key': [{ url: 'https://a.example.com', secret }],
        'key:0123abcd4567': [
          { url: 'ftp://a.example.com', secret },
          { url: 'https://a.example.com', secret: 'abc' },
          { url: 'https://a.example.com', secret, events: ['recording.lost'] },
          { url: 'https://user:pw@a.example.com', secret },
        ],
      }),
      'WEBHOOKS',
    );
    expect(problems.join('\n')).toMatch(/owner ids/);
    expect(problems.join('\n')).toMatch(/http/);
    expect(problems.join('\n')).toMatch(/whsec_/);
    expect(problems.join('\n')).toMatch(/events must be among/);
    expect(problems.join('\n')).toMatch(/credentials/);
    expect(parseWebhooks(JSON.stringify({ '*': [{ url: 'https://a.example.com' }] }), 'W').problems).toEqual([
      'W: *[0]: give a secret ("whsec_…") or secrets',
    ]);
  });

  it('comes from WEBHOOKS or WEBHOOKS_FILE, not both, with the WEBHOOK_* bounds', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'webhooks-config-'));
    try {
      const file = path.join(dir, 'webhooks.json');
      await writeFile(file, JSON.stringify({ '*': [{ url: 'https://hooks.example.com/x', secret }] }));
      const config = loadConfig({
        WEBHOOKS_FILE: file,
        WEBHOOK_ALLOWED_HOSTS: 'hooks.example.com, *.example.org',
        WEBHOOK_PRIVATE_NETWORKS: '10.0.0.0/8',
        WEBHOOK_MAX_AGE: '2h',
      });
      expect(config.webhooks.owners['*']?.endpoints[0]?.url).toBe('https://hooks.example.com/x');
      expect(config.webhooks.allowedHosts).toEqual(['hooks.example.com', '*.example.org']);
      expect(config.webhooks.maxAgeMs).toBe(7_200_000);
      expect(config.webhooks.timeoutMs).toBe(10_000);
      expect(loadConfig({}).webhooks.maxAgeMs).toBe(86_400_000);
      const problems = (() => {
        try {
          loadConfig({ WEBHOOKS_FILE: file, WEBHOOKS: '{}', WEBHOOK_PRIVATE_NETWORKS: 'x/99' });
        } catch (error) {
          return (error as ConfigError).problems;
        }
        return [];
      })();
      expect(problems).toEqual([
        'WEBHOOKS and WEBHOOKS_FILE: set one or the other',
        'WEBHOOK_PRIVATE_NETWORKS: "x/99" is not an address or network (CIDR, e.g. 10.1.0.0/16)',
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('a caller-chosen callbackUrl', () => {
  const secret = newSecret();
  const owner = 'key:0123abcd4567';
  // Public names resolve to a documentation-free public address; anything else asks the system (localhost).
  const resolve: Resolver = async (host) =>
    host.endsWith('.example.com') ? [{ address: '93.184.215.14', family: 4 }] : systemResolver(host);
  const policy: CallbackPolicy = {
    settings: {
      ...DEFAULT_WEBHOOK_SETTINGS,
      allowedHosts: ['hooks.example.com', 'localhost', '127.0.0.1'],
      owners: parseWebhooks(JSON.stringify({ [owner]: { callback: { secret } } }), 'WEBHOOKS').owners,
    },
    privateNetworks: networksOf([]).list,
    resolve,
  };
  const take = (fields: Record<string, string>, query: Record<string, unknown> = {}, metadata?: object) =>
    takeCallbackUrl(fields, query, metadata as Record<string, unknown> | undefined, owner, policy);
  const refusal = async (promise: Promise<unknown>): Promise<string> => {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(GatewayError);
    expect((error as GatewayError).status).toBe(400);
    return (error as GatewayError).message;
  };

  it('is taken from the form, the query or jsondata (and removed from the metadata Imagicle gets)', async () => {
    expect(await take({ callbackUrl: 'https://hooks.example.com/cb?x=1' })).toBe('https://hooks.example.com/cb?x=1');
    expect(await take({}, { callbackUrl: 'https://hooks.example.com/q' })).toBe('https://hooks.example.com/q');
    const metadata = { pbxCallId: 'c1', callbackUrl: 'https://hooks.example.com/j' };
    expect(await take({}, {}, metadata)).toBe('https://hooks.example.com/j');
    expect(metadata).toEqual({ pbxCallId: 'c1' });
    expect(await take({})).toBeUndefined();
  });

  it('is refused with a reason: a host not allowed, loopback by address or by name, credentials, two values', async () => {
    expect(await refusal(take({ callbackUrl: 'https://evil.example.net/x' }))).toMatch(
      /host evil\.example\.net is not one the gateway's operator allows/,
    );
    expect(await refusal(take({ callbackUrl: 'http://127.0.0.1:8080/x' }))).toMatch(
      /127\.0\.0\.1 is a private, loopback/,
    );
    expect(await refusal(take({ callbackUrl: 'http://localhost:8080/x' }))).toMatch(
      /host localhost resolves to (127\.0\.0\.1|::1): webhooks are not sent there/,
    );
    expect(await refusal(take({ callbackUrl: 'https://u:p@hooks.example.com/x' }))).toMatch(/credentials/);
    expect(await refusal(take({ callbackUrl: 'ftp://hooks.example.com/x' }))).toMatch(/http/);
    expect(await refusal(take({ callbackUrl: 'not a url' }))).toMatch(/not a URL/);
    expect(
      await refusal(
        take({ callbackUrl: 'https://hooks.example.com/a' }, { callbackUrl: 'https://hooks.example.com/b' }),
      ),
    ).toMatch(/more than once/);
    expect(
      await refusal(
        takeCallbackUrl({ callbackUrl: 'https://hooks.example.com/a' }, {}, undefined, 'basic:bob', policy),
      ),
    ).toMatch(/not enabled for this key/);
    expect(
      await refusal(takeCallbackUrl({ callbackUrl: 'https://hooks.example.com/a' }, {}, undefined, owner, undefined)),
    ).toMatch(/not enabled on this gateway/);
  });
});
