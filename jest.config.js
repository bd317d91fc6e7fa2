/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // ts-jest transpiles each file on its own (fast, no type check) because tsconfig.json sets
  // isolatedModules; type errors are caught by `tsc --noEmit` in `npm test`.
  transform: {
    '^.+\\.ts$': ['ts-jest', { diagnostics: false }],
  },
  setupFiles: ['<rootDir>/test/setup-env.ts'],
  // IAM in the twin: a test whose twin refused a call of a handler fails, whatever it asserts.
  setupFilesAfterEnv: ['<rootDir>/test/support/no-denied-calls.ts'],
  testTimeout: 120000,
};
