import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { decodeNpy, encodeNpy, readNpy } from '../orchestrator/util/npy';
import { InputError } from '../orchestrator/util/errors';

const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dyncim-npy-'));
afterAll(() => fs.rmSync(folder, { recursive: true, force: true }));

/** A version 1.0 .npy file with `header` (padded as NumPy pads it) and `body`. */
function rawNpy(header: string, body: Buffer): Buffer {
  const unpadded = 10 + header.length + 1;
  const text = header + ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const preamble = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
  preamble.writeUInt16LE(text.length, 8);
  return Buffer.concat([preamble, Buffer.from(text, 'latin1'), body]);
}

function errorOf(action: () => unknown): Error {
  try {
    action();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
}

describe('decodeNpy', () => {
  it('round-trips float32, int32 and uint8 arrays', () => {
    const arrays = [
      { data: new Float32Array([1.5, -2, 3]), shape: [3] },
      { data: new Int32Array([1, 2, 3, 4, 5, 6]), shape: [2, 3] },
      { data: new Uint8Array([7, 8]), shape: [1, 2] },
    ];

    for (const array of arrays) {
      const decoded = decodeNpy(encodeNpy(array));
      expect(decoded.data.constructor).toBe(array.data.constructor);
      expect(Array.from(decoded.data)).toEqual(Array.from(array.data));
      expect(decoded.shape).toEqual(array.shape);
    }
  });

  it('says a float64 array is an unsupported dtype, not a truncated file', () => {
    const float64 = new Float64Array([1, 2, 3, 4]);
    const bytes = rawNpy(
      "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }",
      Buffer.from(float64.buffer),
    );
    const file = path.join(folder, 'doubles.npy');
    fs.writeFileSync(file, bytes);

    const error = errorOf(() => readNpy(file));

    expect(error).toBeInstanceOf(InputError);
    expect(error.message).toBe(`${file}: unsupported .npy dtype <f8 (expected <f4, <i4 or |u1)`);
  });

  it('still reports a truncated body of a supported dtype', () => {
    const whole = encodeNpy({ data: new Float32Array([1, 2, 3]), shape: [3] });

    expect(() => decodeNpy(whole.subarray(0, whole.length - 2), 'cut.npy')).toThrow(
      /^cut\.npy: \.npy body holds 10 bytes, shape \[3\] of <f4 needs 12 \(the file is truncated/,
    );
  });

  it('names a shape that is not a list of sizes', () => {
    const bytes = rawNpy(
      "{'descr': '<f4', 'fortran_order': False, 'shape': (n,), }",
      Buffer.alloc(4),
    );

    expect(() => decodeNpy(bytes, 'odd.npy')).toThrow(
      /^odd\.npy: \.npy header shape \(n,\) is not a list of sizes/,
    );
  });
});
