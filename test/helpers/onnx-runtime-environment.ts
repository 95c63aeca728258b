import NodeEnvironment from 'jest-environment-node';

/**
 * Jest's node environment for tests that run ONNX Runtime sessions. Use it with a docblock at
 * the top of the test file:
 *
 *     /** @jest-environment ./test/helpers/onnx-runtime-environment.ts *\/
 *
 * Why: jest runs each test file in its own realm, with its own Float32Array. onnxruntime-node's
 * native binding builds output tensors from the host realm's typed arrays, and
 * onnxruntime-common then rejects them with `instanceof` against the test realm's
 * ("A float32 tensor's data must be type of function Float32Array()"). Outside jest there is
 * one realm and no problem. Jest already shares ArrayBuffer and Uint8Array with the host for
 * the same reason; this shares the other typed arrays.
 */

const SHARED_CONSTRUCTORS = [
  'Int8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
  'DataView',
] as const;

export default class OnnxRuntimeEnvironment extends NodeEnvironment {
  constructor(...args: ConstructorParameters<typeof NodeEnvironment>) {
    super(...args);

    const testGlobal = this.global as unknown as Record<string, unknown>;
    const hostGlobal = globalThis as unknown as Record<string, unknown>;
    for (const name of SHARED_CONSTRUCTORS) testGlobal[name] = hostGlobal[name];
  }
}
