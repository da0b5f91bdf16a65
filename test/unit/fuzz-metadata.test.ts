/**
 * Property tests of the metadata rules (parseMetadata over the zod schema):
 * whatever the text, the answer is the metadata or a 400 in Imagicle's shape
 * (reason 0 unreadable, reason 1 a wrong field), never anything else; valid
 * metadata always passes and keeps every field, unknown ones included.
 * Bounded: numRuns plus a time limit per property.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseMetadata } from '../../src/pipeline/metadata.js';
import { GatewayError } from '../../src/errors.js';

const LIMITS = { numRuns: 400, interruptAfterTimeLimit: 2500 } as const;

function outcome(text: string): 'ok' | 0 | 1 {
  try {
    parseMetadata(text);
    return 'ok';
  } catch (error) {
    expect(error).toBeInstanceOf(GatewayError);
    const gw = error as GatewayError;
    expect(gw.status).toBe(400);
    expect([0, 1]).toContain(gw.reason);
    const body = gw.toBody();
    expect(Object.keys(body).sort()).toEqual(['message', 'reason']);
    expect(body.message.length).toBeGreaterThan(0);
    expect(body.message.length).toBeLessThan(4096);
    return gw.reason as 0 | 1;
  }
}

const digits = (n: number, min: number, max: number): fc.Arbitrary<string> =>
  fc.integer({ min, max }).map((v) => String(v).padStart(n, '0'));

const instant = fc
  .tuple(
    digits(4, 1970, 2099),
    digits(2, 1, 12),
    digits(2, 1, 28),
    digits(2, 0, 23),
    digits(2, 0, 59),
    digits(2, 0, 59),
    fc.option(digits(7, 0, 9_999_999)),
    fc.constantFrom('Z', '+02:00', '-0530', ''),
  )
  .map(
    ([y, mo, d, h, mi, s, frac, zone]) => `${y}-${mo}-${d}T${h}:${mi}:${s}${frac === null ? '' : `.${frac}`}${zone}`,
  );

const duration = fc
  .tuple(
    fc.option(fc.integer({ min: 0, max: 12 })),
    fc.option(fc.integer({ min: 0, max: 59 })),
    fc.option(fc.double({ min: 0, max: 59.999, noNaN: true })),
  )
  .filter(([h, m, s]) => h !== null || m !== null || s !== null)
  .map(
    ([h, m, s]) =>
      `PT${h === null ? '' : `${h}H`}${m === null ? '' : `${m}M`}${s === null ? '' : `${Number(s.toFixed(3))}S`}`,
  );

const shortText = fc.string({ maxLength: 40 });

const validMetadata = fc.record(
  {
    startDateTime: instant,
    duration,
    direction: fc.constantFrom(0, 1, 2),
    localParty: fc.record({ username: fc.string({ minLength: 1, maxLength: 40 }), phoneNumber: shortText }),
    remoteParty: fc.record({ phoneNumber: shortText }, { requiredKeys: [] }),
    pbxCallId: shortText,
    notes: fc.string({ maxLength: 200 }),
    preserved: fc.boolean(),
    pbxInfo: fc.jsonValue({ maxDepth: 2 }),
  },
  { requiredKeys: ['startDateTime', 'direction', 'localParty'] },
);

describe('parseMetadata never answers outside Imagicle’s shape', () => {
  it('arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (text) => {
        outcome(text);
      }),
      LIMITS,
    );
  });

  it('arbitrary JSON values: anything but an object is reason 0', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (value) => {
        const result = outcome(JSON.stringify(value));
        if (value === null || typeof value !== 'object' || Array.isArray(value)) expect(result).toBe(0);
      }),
      LIMITS,
    );
  });

  it('arbitrary objects are reason 1 at worst', () => {
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.constantFrom(
            'startDateTime',
            'duration',
            'direction',
            'localParty',
            'remoteParty',
            'notes',
            'preserved',
            'pbxCallId',
            'x',
          ),
          fc.jsonValue({ maxDepth: 2 }),
        ),
        (object) => {
          expect(['ok', 1]).toContain(outcome(JSON.stringify(object)));
        },
      ),
      LIMITS,
    );
  });
});

describe('valid metadata', () => {
  it('always passes, every field kept as sent', () => {
    fc.assert(
      fc.property(validMetadata, (metadata) => {
        const text = JSON.stringify(metadata);
        expect(outcome(text)).toBe('ok');
        expect(parseMetadata(text)).toEqual(JSON.parse(text));
      }),
      LIMITS,
    );
  });

  it('one field broken: reason 1, and the message names it', () => {
    const breakages: Array<[string, unknown]> = [
      ['startDateTime', 'yesterday'],
      ['startDateTime', 20180925],
      ['duration', '90 seconds'],
      ['direction', 3],
      ['direction', '2'],
      ['localParty', null],
      ['localParty', { phoneNumber: '1' }],
      ['preserved', 'yes'],
      ['notes', 42],
      ['pbxCallId', ['a']],
    ];
    fc.assert(
      fc.property(validMetadata, fc.constantFrom(...breakages), (metadata, [field, value]) => {
        const broken = { ...metadata, [field]: value };
        const text = JSON.stringify(broken);
        expect(outcome(text)).toBe(1);
        const message = (() => {
          try {
            parseMetadata(text);
            return '';
          } catch (error) {
            return (error as GatewayError).message;
          }
        })();
        expect(message).toContain(field.startsWith('localParty') ? 'localParty' : field);
      }),
      LIMITS,
    );
  });

  it('bytes cut off or flipped: still a 400 in shape, never a crash', () => {
    fc.assert(
      fc.property(validMetadata, fc.nat(), fc.integer({ min: 0, max: 255 }), (metadata, at, byte) => {
        const text = JSON.stringify(metadata);
        const cut = text.slice(0, at % (text.length + 1));
        outcome(cut);
        const bytes = Buffer.from(text, 'utf8');
        bytes[at % bytes.length] = byte;
        outcome(bytes.toString('utf8'));
      }),
      LIMITS,
    );
  });
});
