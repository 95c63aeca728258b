import * as fs from 'fs';
import * as zlib from 'zlib';
import { InputError } from '../util/errors';

/**
 * The only copy of image preprocessing: every image the visual encoder sees (pretraining
 * arrays, dataset arrays, inference) goes through `preprocessImage`.
 *
 * Polarity: inputs follow MNIST, a light (1.0) digit on a dark (0.0) background. Dark-on-light
 * images (a scanned page, most drawings) must be read with `invert: true`, or the encoder sees
 * the negative of what it was trained on.
 */
export const IMAGE_PREPROCESSING = {
  version: 'image-v1',
  /** Images of any other size are resized to this square first (bilinear, aspect not kept). */
  digitSize: 28,
  resize: 'bilinear, half-pixel centres, edge pixels repeated',
  /** Zero (background) border on each side: 28 + 2 x 2 = 32, the encoder's input size. */
  padding: 2,
  /** MNIST training-set statistics of pixel values in [0, 1]. */
  mean: 0.1307,
  std: 0.3081,
  polarity: 'light digit (1) on dark background (0), as MNIST',
  /** The grey channel repeated 3 times: the encoder keeps ResNet-18's 3-channel stem. */
  outputShape: [3, 32, 32] as readonly number[],
} as const;

/**
 * The largest image file `readImageFile` accepts: at most 4096 pixels wide and 4096 high
 * (16.8 megapixels; the encoder sees 28 x 28). The size is read from the header before any
 * pixel is decoded, so a header that claims 30000 x 30000 costs nothing.
 */
export const MAX_IMAGE_SIDE = 4096;

/** A single-channel image, row-major, values in [0, 1]. */
export interface GrayImage {
  pixels: Float32Array;
  width: number;
  height: number;
}

/** Options of `readImageFile`. */
export interface ReadImageOptions {
  /** Replace each value v by 1 - v, for dark-on-light images. Default false. */
  invert?: boolean;
}

interface PngImage {
  width: number;
  height: number;
  /** RGBA, 8 bits per channel, whatever the file's colour type and depth. */
  data: Buffer;
}

interface PngModule {
  PNG: { sync: { read(bytes: Buffer): PngImage } };
}

// pngjs ships no type declarations; this is the one call we make
// eslint-disable-next-line @typescript-eslint/no-var-requires
const pngjs = require('pngjs') as PngModule;

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Bilinear resize with half-pixel centres (as PIL and torchvision place samples). */
export function resizeBilinear(image: GrayImage, width: number, height: number): GrayImage {
  const pixels = new Float32Array(width * height);
  const scaleX = image.width / width;
  const scaleY = image.height / height;

  for (let y = 0; y < height; y++) {
    const sourceY = clamp((y + 0.5) * scaleY - 0.5, 0, image.height - 1);
    const top = Math.floor(sourceY);
    const bottom = Math.min(top + 1, image.height - 1);
    const down = sourceY - top;

    for (let x = 0; x < width; x++) {
      const sourceX = clamp((x + 0.5) * scaleX - 0.5, 0, image.width - 1);
      const left = Math.floor(sourceX);
      const right = Math.min(left + 1, image.width - 1);
      const across = sourceX - left;

      const at = (row: number, column: number) => image.pixels[row * image.width + column];
      const upper = lerp(at(top, left), at(top, right), across);
      const lower = lerp(at(bottom, left), at(bottom, right), across);
      pixels[y * width + x] = lerp(upper, lower, down);
    }
  }

  return { pixels, width, height };
}

function clamp(value: number, low: number, high: number): number {
  return Math.max(low, Math.min(high, value));
}

function lerp(from: number, to: number, fraction: number): number {
  return from + (to - from) * fraction;
}

function checkGrayInput(gray: Float32Array, width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new InputError(`image size must be positive integers, received ${width} x ${height}`);
  }
  if (gray.length !== width * height) {
    throw new InputError(
      `image of ${width} x ${height} needs ${width * height} pixels, received ${gray.length}`,
    );
  }

  for (let i = 0; i < gray.length; i++) {
    const value = gray[i];
    if (!(value >= 0 && value <= 1)) {
      throw new InputError(`image pixel ${i} is ${value}, expected a value in [0, 1]`);
    }
  }
}

/**
 * Turns a grey image (values in [0, 1], MNIST polarity) of any size into the visual encoder's
 * input: [3, 32, 32] flattened row-major. Resize to 28x28 if needed, pad 2 pixels of
 * background, standardise with MNIST's mean and std, repeat into 3 channels.
 */
export function preprocessImage(gray: Float32Array, width: number, height: number): Float32Array {
  checkGrayInput(gray, width, height);

  const { digitSize, padding, mean, std } = IMAGE_PREPROCESSING;
  const digit =
    width === digitSize && height === digitSize
      ? { pixels: gray, width, height }
      : resizeBilinear({ pixels: gray, width, height }, digitSize, digitSize);

  const side = digitSize + 2 * padding;
  const plane = new Float32Array(side * side).fill((0 - mean) / std);
  for (let y = 0; y < digitSize; y++) {
    for (let x = 0; x < digitSize; x++) {
      plane[(y + padding) * side + x + padding] = (digit.pixels[y * digitSize + x] - mean) / std;
    }
  }

  const output = new Float32Array(3 * side * side);
  for (let channel = 0; channel < 3; channel++) output.set(plane, channel * side * side);
  return output;
}

/** Refuses an image size from a file header that is zero or over MAX_IMAGE_SIDE. */
function checkImageSize(width: number, height: number, kind: string, file: string): void {
  if (width < 1 || height < 1) {
    throw new InputError(`${kind} header declares a ${width} x ${height} image (empty)`, file);
  }
  if (width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE) {
    throw new InputError(
      `${kind} image is ${width} x ${height} pixels, larger than the supported ` +
        `${MAX_IMAGE_SIDE} x ${MAX_IMAGE_SIDE}`,
      file,
    );
  }
}

/** Samples per pixel of each PNG colour type (grey, RGB, palette, grey + alpha, RGBA). */
const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/** Adam7 passes: first column, first row, column step, row step. */
const ADAM7_PASSES = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
];

interface PngHeader {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlaced: boolean;
}

function unreadablePng(reason: string, file: string): InputError {
  return new InputError(`not a readable PNG (${reason})`, file);
}

/** The IHDR fields: the PNG format requires IHDR as the first chunk, after the signature. */
function readPngHeader(bytes: Buffer, file: string): PngHeader {
  if (bytes.length < 33 || bytes.toString('latin1', 12, 16) !== 'IHDR') {
    throw unreadablePng('no IHDR header chunk after the signature', file);
  }
  return {
    width: bytes.readUInt32BE(16),
    height: bytes.readUInt32BE(20),
    bitDepth: bytes[24],
    colorType: bytes[25],
    interlaced: bytes[28] === 1,
  };
}

/** Bytes of filtered scanlines (a filter byte per row) the header's image needs. */
function pngDataSize(header: PngHeader): number | undefined {
  const channels = PNG_CHANNELS[header.colorType];
  if (!channels || ![1, 2, 4, 8, 16].includes(header.bitDepth)) return undefined;

  const bitsPerPixel = channels * header.bitDepth;
  const rowBytes = (width: number) => 1 + Math.ceil((width * bitsPerPixel) / 8);
  if (!header.interlaced) return header.height * rowBytes(header.width);

  let bytes = 0;
  for (const [column, row, columnStep, rowStep] of ADAM7_PASSES) {
    const width = Math.ceil(Math.max(0, header.width - column) / columnStep);
    const height = Math.ceil(Math.max(0, header.height - row) / rowStep);
    if (width > 0 && height > 0) bytes += height * rowBytes(width);
  }
  return bytes;
}

/** The IDAT chunks' bytes, concatenated; a chunk running past the end of the file is an error. */
function collectImageData(bytes: Buffer, file: string): Buffer {
  const parts: Buffer[] = [];
  let offset = 8;

  while (offset + 8 <= bytes.length) {
    const length = bytes.readUInt32BE(offset);
    const type = bytes.toString('latin1', offset + 4, offset + 8);
    const present = bytes.length - offset - 12;
    if (length > present) {
      const found = Math.max(0, present);
      throw unreadablePng(
        `truncated ${type} chunk: it says ${length} bytes but only ${found} are present`,
        file,
      );
    }
    if (type === 'IDAT') parts.push(bytes.subarray(offset + 8, offset + 8 + length));
    if (type === 'IEND') break;
    offset += 12 + length;
  }

  return Buffer.concat(parts);
}

/**
 * Inflates the image data far enough to see whether it holds every row the header declares:
 * pngjs fills missing rows with zeros without a word, which would feed the encoder a blank
 * image. Extra data is left to pngjs.
 */
function checkPngData(bytes: Buffer, header: PngHeader, file: string): void {
  const needed = pngDataSize(header);
  if (!needed) return; // an invalid colour type or depth: pngjs says which

  const compressed = collectImageData(bytes, file);
  let inflated: number;
  try {
    inflated = zlib.inflateSync(compressed, {
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
      maxOutputLength: needed,
    }).length;
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') return;
    throw unreadablePng(`image data does not inflate: ${(error as Error).message}`, file);
  }

  if (inflated < needed) {
    // without interlacing every row holds the same number of bytes
    const rowsFound = Math.floor((inflated * header.height) / needed);
    const rows = header.interlaced ? '' : ` (${rowsFound} of ${header.height} rows)`;
    throw new InputError(
      `truncated PNG image data: ${header.width} x ${header.height} needs ${needed} ` +
        `bytes of scanlines, the IDAT chunks hold ${inflated}${rows}`,
      file,
    );
  }
}

function decodePng(bytes: Buffer, file: string): GrayImage {
  const header = readPngHeader(bytes, file);
  checkImageSize(header.width, header.height, 'PNG', file);
  checkPngData(bytes, header, file);

  let png: PngImage;
  try {
    png = pngjs.PNG.sync.read(bytes);
  } catch (error) {
    throw new InputError(`not a readable PNG (${(error as Error).message})`, file);
  }

  const pixels = new Float32Array(png.width * png.height);
  for (let i = 0; i < pixels.length; i++) {
    const [red, green, blue, alpha] = png.data.subarray(4 * i, 4 * i + 4);
    // ITU-R 601 luma, as PIL's 'L' mode; transparency composited over the dark background
    const luma = (0.299 * red + 0.587 * green + 0.114 * blue) / 255;
    pixels[i] = luma * (alpha / 255);
  }

  return { pixels, width: png.width, height: png.height };
}

/** Reads the next header token of a PGM file, skipping whitespace and # comments. */
function nextPgmToken(bytes: Buffer, start: number): { token: string; end: number } {
  let at = start;
  for (;;) {
    while (at < bytes.length && /\s/.test(String.fromCharCode(bytes[at]))) at++;
    if (bytes[at] !== 0x23) break;
    while (at < bytes.length && bytes[at] !== 0x0a) at++;
  }

  const tokenStart = at;
  while (at < bytes.length && !/\s/.test(String.fromCharCode(bytes[at]))) at++;
  return { token: bytes.toString('latin1', tokenStart, at), end: at };
}

function decodePgm(bytes: Buffer, file: string): GrayImage {
  const fields: number[] = [];
  let at = 2;
  for (const name of ['width', 'height', 'maximum value']) {
    const { token, end } = nextPgmToken(bytes, at);
    const value = Number(token);
    if (!Number.isInteger(value) || value < 1) {
      const received = JSON.stringify(token);
      throw new InputError(`PGM header ${name} is ${received}, expected a positive integer`, file);
    }
    fields.push(value);
    at = end;
  }

  const [width, height, maximum] = fields;
  checkImageSize(width, height, 'PGM', file);
  if (maximum > 65535) throw new InputError(`PGM maximum value ${maximum} exceeds 65535`, file);

  // exactly one whitespace byte separates the header from the binary raster
  const rasterStart = at + 1;
  const bytesPerPixel = maximum < 256 ? 1 : 2;
  const needed = width * height * bytesPerPixel;
  const available = bytes.length - rasterStart;
  if (available < needed) {
    throw new InputError(
      `PGM raster of ${width} x ${height} needs ${needed} bytes, only ${Math.max(0, available)} ` +
        'follow (file is truncated)',
      file,
    );
  }

  const pixels = new Float32Array(width * height);
  for (let i = 0; i < pixels.length; i++) {
    const raw =
      bytesPerPixel === 1 ? bytes[rasterStart + i] : bytes.readUInt16BE(rasterStart + 2 * i);
    pixels[i] = Math.min(raw, maximum) / maximum;
  }

  return { pixels, width, height };
}

/**
 * Reads a PNG (any colour type and bit depth, converted to grey) or a binary PGM (P5) as a grey
 * image with values in [0, 1]. Errors name the file: missing, truncated (image data short of
 * what the header declares), larger than MAX_IMAGE_SIDE on a side, not an image.
 */
export function readImageFile(file: string, options: ReadImageOptions = {}): GrayImage {
  if (!fs.existsSync(file)) throw new InputError('image file not found', file);
  const bytes = fs.readFileSync(file);

  let image: GrayImage;
  if (bytes.length >= 8 && bytes.subarray(0, 8).equals(PNG_SIGNATURE)) {
    image = decodePng(bytes, file);
  } else if (bytes.length >= 2 && bytes.toString('latin1', 0, 2) === 'P5') {
    image = decodePgm(bytes, file);
  } else {
    throw new InputError('not an image: expected a PNG or a binary PGM (P5) file', file);
  }

  if (options.invert) image.pixels = image.pixels.map((value) => 1 - value);
  return image;
}
