import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test/fixtures/generated/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // DESIGN.md's layering: media/ and imagicle/ know neither the configuration, http/ nor delivery/.
    files: ['src/media/**/*.ts', 'src/imagicle/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/config.js', '**/http/*', '**/delivery/*'],
              message: 'media/ and imagicle/ take settings as data; config.ts, http/ and delivery/ import them.',
            },
          ],
        },
      ],
    },
  },
);
