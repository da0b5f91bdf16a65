import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** DESIGN.md's layering: the media and Imagicle modules are the core; they know no door, store or configuration. */
const coreMayNotImport = [
  { group: ['**/http/**', '**/http/*.js'], message: 'media/ and imagicle/ do not know the HTTP layer' },
  { group: ['**/delivery/**', '**/delivery/*.js'], message: 'media/ and imagicle/ do not know the delivery layer' },
  { group: ['**/distributed/**', '**/import/**'], message: 'media/ and imagicle/ do not know the doors or the queue' },
  {
    group: ['**/config.js', '**/config'],
    message: 'settings come in as data: import the domain module, not config.ts',
  },
  { group: ['**/pipeline/**'], message: 'media/ and imagicle/ do not know the pipeline that uses them' },
];

/** Only media/process.ts spawns (restricted argv, memory ceiling, time budget, kill on abort). */
const noSpawn = [{ name: 'node:child_process', message: 'spawn through media/process.ts' }];

const coreRule = (other, spawnForbidden) => ({
  paths: spawnForbidden ? noSpawn : [],
  patterns: [
    ...coreMayNotImport,
    { group: [`**/${other}/**`], message: 'media/ and imagicle/ know neither each other' },
  ],
});

/** A layer that may not import these folders (and, like every file, spawns only through media/process.ts). */
const zone = (folders) => ({
  paths: noSpawn,
  patterns: folders.map((f) => ({ group: [`**/${f}/**`], message: `this layer does not import ${f}/ (DESIGN.md)` })),
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test/fixtures/generated/**', 'coverage/**', 'bench/work/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  // One no-restricted-imports per file (flat config replaces, not merges, a rule's options): the blocks go from the
  // general to the particular.
  // Plain Node scripts (scripts/build-if-stale.mjs runs before any build, without tsx).
  { files: ['scripts/**/*.mjs'], languageOptions: { globals: { process: 'readonly' } } },
  { files: ['src/**/*.ts'], rules: { 'no-restricted-imports': ['error', { paths: noSpawn }] } },
  { files: ['src/media/**/*.ts'], rules: { 'no-restricted-imports': ['error', coreRule('imagicle', true)] } },
  { files: ['src/media/process.ts'], rules: { 'no-restricted-imports': ['error', coreRule('imagicle', false)] } },
  { files: ['src/imagicle/**/*.ts'], rules: { 'no-restricted-imports': ['error', coreRule('media', true)] } },
  // The use case (pipeline/) knows no door, store or queue; delivery/ knows neither the queue nor the doors (http/,
  // import/); the file doors (import/) know neither HTTP nor the queue; http/ knows neither the queue nor the file
  // doors: the composition root (gateway.ts) wires them, loading distributed/ only in the distributed mode.
  {
    files: ['src/pipeline/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', zone(['delivery', 'http', 'import', 'distributed'])] },
  },
  {
    files: ['src/delivery/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', zone(['distributed', 'http', 'import'])] },
  },
  { files: ['src/import/**/*.ts'], rules: { 'no-restricted-imports': ['error', zone(['http', 'distributed'])] } },
  { files: ['src/http/**/*.ts'], rules: { 'no-restricted-imports': ['error', zone(['distributed', 'import'])] } },
);
