import * as fs from 'fs';
import { InputError } from './errors';
import { writeFileAtomic } from './atomic';

/**
 * Reader and writer for NumPy's .npy format (version 1.0, little endian, C order). The
 * TypeScript side writes preprocessed arrays in this format so that the Python pretraining
 * script consumes exactly the arrays that inference will see.
 */

export type NpyData = Float32Array | Int32Array | Uint8Array;

export interface NpyArray<T extends NpyData = NpyData> {
  data: T;
  shape: number[];
}

const DESCRIPTORS: Record<string, string> = {
  Float32Array: '<f4',
  Int32Array: '<i4',
  Uint8Array: '|u1',
};

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);

/** Bytes per value of each dtype `decodeNpy` reads. */
const DTYPE_WIDTHS = new Map([
  ['<f4', 4],
  ['<i4', 4],
  ['|u1', 1],
  ['<u1', 1],
]);

function productOf(shape: number[]): number {
  return shape.reduce((total, size) => total * size, 1);
}

/** Encodes an array as .npy bytes. */
export function encodeNpy(array: NpyArray): Buffer {
  const descriptor = DESCRIPTORS[array.data.constructor.name];
  if (productOf(array.shape) !== array.data.length) {
    throw new RangeError(
      `npy shape [${array.shape}] holds ${productOf(array.shape)} values, ` +
        `data has ${array.data.length}`,
    );
  }

  const shapeText =
    array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(', ')})`;
  let header = `{'descr': '${descriptor}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const unpadded = MAGIC.length + 2 + 2 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';

  const preamble = Buffer.alloc(MAGIC.length + 4);
  MAGIC.copy(preamble);
  preamble[6] = 1;
  preamble[7] = 0;
  preamble.writeUInt16LE(header.length, 8);
  const body = Buffer.from(array.data.buffer, array.data.byteOffset, array.data.byteLength);
  return Buffer.concat([preamble, Buffer.from(header, 'latin1'), body]);
}

/** Writes an array to `target` atomically. */
export function writeNpy(target: string, array: NpyArray): void {
  writeFileAtomic(target, encodeNpy(array));
}

function parseHeader(header: string, file: string): { descriptor: string; shape: number[] } {
  const descriptor = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descriptor || !fortran || shapeText === undefined) {
    throw new InputError(`not a valid .npy header: ${JSON.stringify(header.trim())}`, file);
  }
  if (fortran === 'True')
    throw new InputError('Fortran-ordered .npy arrays are not supported', file);

  const parts = shapeText
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0);
  const shape = parts.map(Number);
  if (!shape.every((size) => Number.isInteger(size) && size >= 0)) {
    throw new InputError(`.npy header shape (${shapeText}) is not a list of sizes`, file);
  }
  return { descriptor, shape };
}

/** Decodes .npy bytes; `file` only names the source in errors. */
export function decodeNpy(bytes: Buffer, file = '<buffer>'): NpyArray {
  if (bytes.length < 10 || !bytes.subarray(0, 6).equals(MAGIC)) {
    throw new InputError('not a .npy file (bad magic bytes)', file);
  }

  const major = bytes[6];
  const headerLength = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const headerStart = major === 1 ? 10 : 12;
  const header = bytes.subarray(headerStart, headerStart + headerLength).toString('latin1');
  const { descriptor, shape } = parseHeader(header, file);
  // the dtype first: a float64 file is unsupported, not "truncated" for its 8-byte values
  const width = DTYPE_WIDTHS.get(descriptor);
  if (width === undefined) {
    throw new InputError(`unsupported .npy dtype ${descriptor} (expected <f4, <i4 or |u1)`, file);
  }
  const count = productOf(shape);
  const bodyStart = headerStart + headerLength;
  const body = bytes.subarray(bodyStart);

  if (body.length !== count * width) {
    throw new InputError(
      `.npy body holds ${body.length} bytes, shape [${shape}] of ${descriptor} ` +
        `needs ${count * width}` +
        ' (the file is truncated or corrupt)',
      file,
    );
  }

  // copy into a fresh, aligned buffer: typed arrays need an offset that is a multiple of 4
  const aligned = new Uint8Array(body.length);
  aligned.set(body);

  switch (descriptor) {
    case '<f4':
      return { data: new Float32Array(aligned.buffer, 0, count), shape };
    case '<i4':
      return { data: new Int32Array(aligned.buffer, 0, count), shape };
    default:
      return { data: aligned, shape };
  }
}

/** Reads a .npy file, with errors that name it. */
export function readNpy(file: string): NpyArray {
  if (!fs.existsSync(file)) throw new InputError('file not found', file);
  return decodeNpy(fs.readFileSync(file), file);
}
