/** `dtmf` at the file doors (issue 22): a manifest column, or beside the jsondata in a sidecar; checked like a form field. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { itemForFile, itemsFromManifest } from '../../src/import/sources.js';
import { SAMPLE_METADATA } from '../helpers/gateway.js';

let root: string;
const sources = { timezone: 'UTC', maxOffsetMs: 43_200_000 };

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'dtmf-import-'));
  for (const name of ['a.wav', 'b.wav', 'c.wav', 'd.wav']) await writeFile(path.join(root, name), 'not read here');
  await writeFile(path.join(root, 'a.json'), JSON.stringify({ jsondata: SAMPLE_METADATA, dtmf: 'mask' }));
  await writeFile(path.join(root, 'b.json'), JSON.stringify(SAMPLE_METADATA));
  await writeFile(path.join(root, 'c.json'), JSON.stringify({ jsondata: SAMPLE_METADATA, dtmf: 'erase' }));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('dtmf at the file doors', () => {
  it("reads a sidecar's dtmf beside its jsondata; a bare jsondata has none", async () => {
    expect((await itemForFile(path.join(root, 'a.wav'), root, sources)).stereoOptions).toEqual({ dtmf: 'mask' });
    const bare = await itemForFile(path.join(root, 'b.wav'), root, sources);
    expect(bare.metadata.ok).toBe(true);
    expect(bare.stereoOptions).toBeUndefined();
  });

  it('refuses an unknown value with the reason a request would get', async () => {
    const bad = await itemForFile(path.join(root, 'c.wav'), root, sources);
    expect(bad.metadata).toMatchObject({ ok: false });
    expect(bad.metadata.ok === false && bad.metadata.reason).toMatch(/dtmf must be one of off, detect, mask/);
  });

  it("takes the manifest's dtmf column over the sidecar's", async () => {
    const manifest = path.join(root, 'm.jsonl');
    const row = (file: string, dtmf?: string) =>
      JSON.stringify({ file, startDateTime: SAMPLE_METADATA.startDateTime, direction: 2, dtmf });
    await writeFile(manifest, [row('a.wav', 'detect'), row('a.wav'), row('d.wav', 'off')].join('\n'));
    const items = await itemsFromManifest(manifest, sources);
    expect(items.map((i) => i.stereoOptions?.dtmf)).toEqual(['detect', 'mask', 'off']);
  });
});
