/**
 * Jest runs the TypeScript sources directly; `npm run typecheck` catches type errors.
 * The environment shares the host's typed arrays with each test file, which onnxruntime-node
 * needs (see test/helpers/onnx-runtime-environment.ts).
 */
module.exports = {
  testEnvironment: './test/helpers/onnx-runtime-environment.ts',
  roots: ['<rootDir>/test'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { diagnostics: false }],
  },
  testTimeout: 120000,
};
