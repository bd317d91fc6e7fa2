// ESLint flat config (`npm run lint`). typescript-eslint reads type information through the
// project's tsconfig.json, so the promise rules know which expressions are promises; tests also
// get eslint-plugin-jest. Formatting is Prettier's job (`npm run format`), not ESLint's.
import js from '@eslint/js';
import jest from 'eslint-plugin-jest';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'cdk.out/', 'coverage/', '**/*.js', '**/*.mjs', '**/*.cjs', '**/*.d.ts'] },
  {
    files: ['bin/**/*.ts', 'cli/**/*.ts', 'lib/**/*.ts', 'lambdas/**/*.ts', 'local/**/*.ts', 'scripts/**/*.ts', 'test/**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // The twin and the handlers start background work (servers, pollers, timers, event
      // deliveries). A promise nobody awaits or handles loses its error, so each one must be
      // awaited, handled, or marked `void` with a comment saying why nothing waits for it.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // `_name` is the house way to say "deliberately unused" (e.g. dropping a key with a rest pattern).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
    },
  },
  {
    files: ['test/**/*.ts'],
    ...jest.configs['flat/recommended'],
    rules: {
      ...jest.configs['flat/recommended'].rules,
      'jest/no-focused-tests': 'error',
      'jest/no-disabled-tests': 'error',
      // CDK's Template assertions and fast-check's fc.assert throw on failure, like expect.
      'jest/expect-expect': ['error', { assertFunctionNames: ['expect', 'fc.assert', 'template.*', 'Template.*'] }],
      // Table-driven and property tests branch on the case they check (`if (ok) expect(...)`);
      // rewriting 50-odd of them buys nothing.
      'jest/no-conditional-expect': 'off',
      // CloudFormation templates are untyped JSON; template tests walk them as `any`.
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
);
