import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '.cluster/**', 'data/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // An ES import of node:http reads its WebSocket getters, which load undici, http2, tls, zlib, crypto and
    // assert into an idle rtmpd (7 MiB): its values come from http/required-modules.ts. The liveness worker is
    // bundled as CommonJS (rtmpd/bundle.ts), whose imports are requires.
    files: ['rtmpd/src/**/*.ts'],
    ignores: ['rtmpd/src/**/*.test.ts', 'rtmpd/src/http/liveness-worker.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: ['node:http', 'http'].map((name) => ({
            name,
            allowTypeImports: true,
            message: "Take node:http's values from http/required-modules.ts: an ES import loads undici (7 MiB idle).",
          })),
        },
      ],
    },
  },
);
