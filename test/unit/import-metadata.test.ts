/** File-name patterns and the precedence of metadata sources (pure). */
import { describe, expect, it } from 'vitest';
import { compilePattern, PatternError } from '../../src/import/pattern.js';
import { mergeLayers, patternLayer, resolveMetadata } from '../../src/import/metadata.js';
import { rowToManifestRow } from '../../src/import/manifest.js';
import { fileDoorProblems } from '../../src/import/settings.js';

const PATTERN = '{start:yyyyMMdd-HHmmss}_{direction:in=1,out=2}_{local}_{remote}_{callId}';

describe('file-name patterns', () => {
  it('reads every field of a name, in the given time zone', () => {
    const layer = patternLayer(
      compilePattern(PATTERN),
      'any/folder/20240115-093000_out_201_+390612345_abc-1.wav',
      'Europe/Rome',
    );
    expect(layer).toEqual({
      startDateTime: '2024-01-15T08:30:00.000Z',
      direction: 2,
      localParty: { phoneNumber: '201' },
      remoteParty: { phoneNumber: '+390612345' },
      pbxCallId: 'abc-1',
    });
  });

  it('takes parts of the start from folders, and names from the pattern', () => {
    const p = compilePattern('{start:yyyy}/{start:MM}/{start:dd}/{start:HHmmss}-{localName}-{remoteName}-{*}');
    expect(patternLayer(p, 'archive/2023/07/04/235959-alice-bob-whatever.mp3', 'UTC')).toEqual({
      startDateTime: '2023-07-04T23:59:59.000Z',
      localParty: { username: 'alice' },
      remoteParty: { username: 'bob' },
    });
  });

  it('keeps an offset the name carries, and tells a non-match from a bad value', () => {
    const p = compilePattern("{start:yyyy-MM-dd'T'HHmmssZZZ}_{callId}");
    expect(patternLayer(p, '2024-02-01T101500+0530_x.wav', 'UTC')?.startDateTime).toBe('2024-02-01T04:45:00.000Z');
    expect(patternLayer(compilePattern(PATTERN), 'nope.wav', 'UTC')).toBeUndefined();
    expect(() => patternLayer(compilePattern(PATTERN), '20240231-093000_in_1_2_c.wav', 'UTC')).toThrow(PatternError);
  });

  it('refuses unknown fields and bad direction maps', () => {
    expect(() => compilePattern('{start:yyyy}_{who}')).toThrow(/unknown field/);
    expect(() => compilePattern('{direction:in=4}')).toThrow(/direction map/);
    expect(fileDoorProblems({ pattern: '{x}', defaults: '[1]', timezone: 'No/Where' }, '--')).toHaveLength(3);
  });
});

describe('metadata precedence', () => {
  it('manifest > sidecar > pattern > defaults, field by field, parties merged', () => {
    const merged = mergeLayers([
      { direction: 0, localParty: { username: 'default', phoneNumber: '0' }, notes: 'defaults' },
      { direction: 1, localParty: { phoneNumber: '100' } },
      { notes: 'sidecar', remoteParty: { phoneNumber: '9' } },
      rowToManifestRow({ notes: 'manifest', localUsername: '', direction: 'outgoing' }, 2).layer,
    ]);
    expect(merged).toEqual({
      direction: 2,
      localParty: { username: 'default', phoneNumber: '100' },
      notes: 'manifest',
      remoteParty: { phoneNumber: '9' },
    });
  });

  it('reads offset-less starts in the time zone and reports what is missing', () => {
    const ok = resolveMetadata(
      [{ startDateTime: '2024-07-01T12:00:00', direction: 1, localParty: { username: 'a', phoneNumber: '1' } }],
      'America/New_York',
    );
    expect(ok).toEqual({ ok: true, metadata: expect.objectContaining({ startDateTime: '2024-07-01T16:00:00.000Z' }) });
    const bad = resolveMetadata([{ direction: 7, localParty: { phoneNumber: '1' } }], 'UTC');
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.reason).toMatch(/startDateTime.*direction.*username|startDateTime/);
  });
});
