import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'src/generated/', 'bench/results/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver': { node: { extensions: ['.ts', '.js'] } } },
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly' } },
    rules: {
      'import-x/no-cycle': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-empty': ['error', { allowEmptyCatch: false }],
    },
  },
  {
    // The engine knows only pg and files; nothing imports the GraphQL layer.
    files: ['src/migrations/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: ['bullmq', 'graphql*', '@pothos/*', '**/generated/**', '@prisma/*', '../graphql/*', '../runs/*', '../queue/*'] },
      ],
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/graphql/**', 'src/main.ts', 'src/app.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['**/graphql/**'] }] },
  },
);
