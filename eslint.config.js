// Lint run by scripts/test.sh before jest. Typed linting with the project's tsconfig, so
// the rules that need types (floating promises) see what tsc sees. Few rules on purpose:
// each catches a class of bug or keeps code reviewable; style is left to review.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'native/build/**', '**/*.js', '**/*.mjs'] },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // A promise nobody awaits loses its rejection (an unhandled rejection ends the agent)
      // and its ordering; mark the deliberate ones with `void`.
      '@typescript-eslint/no-floating-promises': 'error',
      // The same bug through a callback that ignores what it returns (setInterval(async ...)).
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: true, attributes: false } }],
      // What a module exports is read by its callers: its types are written down.
      '@typescript-eslint/explicit-module-boundary-types': 'error',
      // Past this a function has more paths than its tests can name; split it. (ESLint counts
      // ?. and ?? too, so defaulting optional fields costs; 20 leaves room for that.)
      complexity: ['error', { max: 20 }],
    },
  },
);
