/** The settings as an operator meets them: the README's table, warnings for look-alikes, per-instance folders. */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, SETTING_NAMES, unknownSettingsIn } from '../../src/config.js';

/** The names in the first column of the README's table under "## Configuration". */
function readmeSettings(): string[] {
  const readme = readFileSync('README.md', 'utf8');
  const section = readme.slice(
    readme.indexOf('\n## Configuration'),
    readme.indexOf('\n## ', readme.indexOf('\n## Configuration') + 5),
  );
  return section
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .flatMap((line) => [...line.split('|')[1]!.matchAll(/`([A-Z0-9_]+)`/g)].map((m) => m[1]!));
}

describe('settings', () => {
  it("the README's table and the schema list the same names", () => {
    expect([...readmeSettings()].sort()).toEqual([...SETTING_NAMES].sort());
  });

  it('names the closest setting for a variable that looks like one but is not', () => {
    expect(
      unknownSettingsIn({
        GATEWAY_API_KEY: 'k',
        IMAGICLE_URI: 'http://x',
        CONCURENCY: '2',
        SPOOL_DIRECTORY: '/x',
        NODE_OPTIONS: '--x',
        HOSTNAME: 'box',
        PATH: '/bin',
        HOME: '/root',
        PORT: '1',
      }),
    ).toEqual([
      { name: 'CONCURENCY', closest: 'CONCURRENCY' },
      { name: 'GATEWAY_API_KEY', closest: 'GATEWAY_API_KEYS' },
      { name: 'IMAGICLE_URI', closest: 'IMAGICLE_URL' },
      { name: 'SPOOL_DIRECTORY', closest: 'SPOOL_DIR' },
    ]);
    expect(loadConfig({ IMAGICLE_URI: 'http://x' }).unknownSettings).toEqual([
      { name: 'IMAGICLE_URI', closest: 'IMAGICLE_URL' },
    ]);
  });

  it('gives each instance its own TMP_DIR and EMULATOR_DIR unless told', () => {
    const a = loadConfig({ PORT: '8080' });
    const b = loadConfig({ PORT: '9090', EMULATOR_PORT: '9091' });
    expect(a.tmpDir).toBe(path.join(os.tmpdir(), 'imagicle-gateway-8080'));
    expect(b.tmpDir).toBe(path.join(os.tmpdir(), 'imagicle-gateway-9090'));
    expect(a.emulatorDir).toBe(path.join(os.tmpdir(), 'imagicle-gateway-emulator-8081'));
    expect(b.emulatorDir).toBe(path.join(os.tmpdir(), 'imagicle-gateway-emulator-9091'));
    expect(loadConfig({ PORT: '8080', TMP_DIR: '/srv/tmp' }).tmpDir).toBe('/srv/tmp');
  });
});
