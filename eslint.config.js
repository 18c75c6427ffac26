import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'src/generated/', 'bench/results/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-empty': ['error', { allowEmptyCatch: false }],
    },
  },
  {
    // The operator console's static files run in the browser, as plain ES modules.
    files: ['src/console/**/*.js'],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    // Nothing outside the GraphQL layer (and the wiring) imports it.
    files: ['src/**/*.ts'],
    ignores: ['src/graphql/**', 'src/main.ts', 'src/app.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['**/graphql/**'] }] },
  },
  {
    // The engine knows only pg and files: no queue, no GraphQL, no Prisma.
    files: ['src/migrations/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            'bullmq',
            'ioredis',
            'graphql',
            'graphql-*',
            '@pothos/*',
            '@prisma/*',
            '**/generated/**',
            '**/graphql/**',
            '**/runs/**',
            '**/queue/**',
            '**/tenants/**',
          ],
        },
      ],
    },
  },
);
