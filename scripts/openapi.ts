/**
 * Writes the gateway's OpenAPI document (as GET /openapi.json serves it with the default configuration) to a
 * file, for `redocly lint` in `npm run lint`. Usage: tsx scripts/openapi.ts <out.json>
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../src/config.js';
import { buildOpenApi } from '../src/http/openapi.js';

const out = process.argv[2];
if (!out) {
  process.stderr.write('usage: tsx scripts/openapi.ts <out.json>\n');
  process.exit(2);
}
const config = loadConfig({ GATEWAY_API_KEYS: 'openapi-lint-key-0123456789' });
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(buildOpenApi(config), null, 2)}\n`);
