/** Jest runs the TypeScript sources directly; type errors are caught by `npm run build`. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { diagnostics: false }],
  },
  testTimeout: 120000,
};
