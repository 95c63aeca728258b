import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import {
  IMAGE_PREPROCESSING,
  MAX_IMAGE_SIDE,
  preprocessImage,
  readImageFile,
  resizeBilinear,
} from '../orchestrator/data/image-preprocessing';
import { InputError } from '../orchestrator/util/errors';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const { PNG } = require('pngjs');

const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dyncim-image-'));
afterAll(() => fs.rmSync(folder, { recursive: true, force: true }));

function writePng(name: string, width: number, height: number, rgba: number[], colorType = 6) {
  const png = new PNG({ width, height, colorType, inputColorType: 6, inputHasAlpha: true });
  png.data = Buffer.from(rgba);
  const file = path.join(folder, name);
  fs.writeFileSync(file, PNG.sync.write(png, { colorType, inputColorType: 6 }));
  return file;
}

function expectClose(actual: Float32Array, expected: number[]): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((value, i) => expect(value).toBeCloseTo(expected[i], 6));
}

describe('resizeBilinear', () => {
  it('interpolates at half-pixel centres (2 -> 4 columns, worked by hand)', () => {
    // output x = 0..3 samples source x = -0.25, 0.25, 0.75, 1.25, clamped to [0, 1]
    const image = { pixels: new Float32Array([0, 1, 0, 1]), width: 2, height: 2 };

    const resized = resizeBilinear(image, 4, 1);

    expect(Array.from(resized.pixels)).toEqual([0, 0.25, 0.75, 1]);
  });

  it('averages 2x2 blocks when halving an image', () => {
    const image = { pixels: new Float32Array([0, 1, 0.5, 0.5]), width: 2, height: 2 };

    expect(Array.from(resizeBilinear(image, 1, 1).pixels)).toEqual([0.5]);
  });
});

describe('preprocessImage', () => {
  const background = (0 - 0.1307) / 0.3081;
  const white = (1 - 0.1307) / 0.3081;

  it('pads a 28x28 image by 2, standardises with MNIST statistics, repeats 3 channels', () => {
    const gray = new Float32Array(28 * 28);
    gray[0] = 1; // top-left pixel of the digit lands at (2, 2) after padding

    const output = preprocessImage(gray, 28, 28);

    expect(IMAGE_PREPROCESSING.outputShape).toEqual([3, 32, 32]);
    expect(output.length).toBe(3 * 32 * 32);
    for (let channel = 0; channel < 3; channel++) {
      const base = channel * 1024;
      expect(output[base + 2 * 32 + 2]).toBeCloseTo(white, 6);
      expect(output[base + 0]).toBeCloseTo(background, 6);
      expect(output[base + 2 * 32 + 3]).toBeCloseTo(background, 6);
    }
  });

  it('resizes other sizes to 28x28 first', () => {
    const output = preprocessImage(new Float32Array(56 * 56).fill(1), 56, 56);

    expect(output[16 * 32 + 16]).toBeCloseTo(white, 6);
    expect(output[1 * 32 + 1]).toBeCloseTo(background, 6);
  });

  it('rejects a wrong pixel count, NaN and out-of-range values', () => {
    const withNaN = new Float32Array(4);
    withNaN[3] = NaN;

    expect(() => preprocessImage(new Float32Array(10), 28, 28)).toThrow(
      /needs 784 pixels, received 10/,
    );
    expect(() => preprocessImage(withNaN, 2, 2)).toThrow(/pixel 3 is NaN/);
    expect(() => preprocessImage(new Float32Array([0, 255, 0, 0]), 2, 2)).toThrow(/in \[0, 1\]/);
    expect(() => preprocessImage(new Float32Array(0), 0, 0)).toThrow(InputError);
  });
});

describe('readImageFile', () => {
  it('reads an RGBA PNG as luma composited over black', () => {
    const file = writePng('rgba.png', 2, 1, [255, 255, 255, 255, 255, 0, 0, 128]);

    const image = readImageFile(file);

    expect(image.width).toBe(2);
    expect(image.height).toBe(1);
    expect(image.pixels[0]).toBeCloseTo(1, 6);
    expect(image.pixels[1]).toBeCloseTo(0.299 * (128 / 255), 6);
  });

  it('reads a greyscale PNG and inverts it on request', () => {
    const file = writePng('gray.png', 2, 1, [0, 0, 0, 255, 51, 51, 51, 255], 0);

    expectClose(readImageFile(file).pixels, [0, 0.2]);
    expectClose(readImageFile(file, { invert: true }).pixels, [1, 0.8]);
  });

  it('reads binary PGM with comments, 8-bit and 16-bit', () => {
    const eightBit = path.join(folder, 'digit.pgm');
    const header = Buffer.from('P5\n# made by a test\n3 1\n255\n', 'latin1');
    fs.writeFileSync(eightBit, Buffer.concat([header, Buffer.from([0, 51, 255])]));
    const sixteenBit = path.join(folder, 'deep.pgm');
    const raster = Buffer.alloc(4);
    raster.writeUInt16BE(500, 0);
    raster.writeUInt16BE(1000, 2);
    fs.writeFileSync(sixteenBit, Buffer.concat([Buffer.from('P5 2 1 1000\n', 'latin1'), raster]));

    const image = readImageFile(eightBit);

    expect([image.width, image.height]).toEqual([3, 1]);
    expectClose(image.pixels, [0, 0.2, 1]);
    expectClose(readImageFile(sixteenBit).pixels, [0.5, 1]);
  });

  it('names the file for missing, truncated and non-image files', () => {
    const truncatedPgm = path.join(folder, 'short.pgm');
    fs.writeFileSync(truncatedPgm, Buffer.from('P5\n4 4\n255\nabc', 'latin1'));
    const text = path.join(folder, 'notes.png');
    fs.writeFileSync(text, 'hello');
    const good = fs.readFileSync(writePng('whole.png', 4, 4, new Array(64).fill(200)));
    const truncatedPng = path.join(folder, 'cut.png');
    fs.writeFileSync(truncatedPng, good.subarray(0, good.length - 20));

    expect(() => readImageFile(path.join(folder, 'none.png'))).toThrow(
      /none\.png: image file not found/,
    );
    expect(() => readImageFile(truncatedPgm)).toThrow(
      /short\.pgm: .*needs 16 bytes, only 3 follow/,
    );
    expect(() => readImageFile(text)).toThrow(/notes\.png: not an image/);
    expect(() => readImageFile(truncatedPng)).toThrow(/cut\.png: not a readable PNG/);
  });
});

/** CRC-32 (ISO 3309, as PNG chunks use), bit by bit: slow, but only tests call it. */
function crc32(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), body])), 0);
  return Buffer.concat([head, body, crc]);
}

/** An 8-bit greyscale PNG with valid chunk CRCs whose IDAT holds `compressed` as given. */
function greyPng(width: number, height: number, compressed: Buffer, interlaced = false): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 0; // colour type: grey
  header[12] = interlaced ? 1 : 0;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    pngChunk('IDAT', compressed),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Unfiltered scanlines (filter byte 0) of `rows` rows of `width` grey pixels of `level`. */
function scanlines(width: number, rows: number, level = 200): Buffer {
  const line = Buffer.alloc(1 + width, level);
  line[0] = 0;
  return Buffer.concat(Array.from({ length: rows }, () => line));
}

function writeFile(name: string, bytes: Buffer): string {
  const file = path.join(folder, name);
  fs.writeFileSync(file, bytes);
  return file;
}

describe('readImageFile on short or oversized image data', () => {
  it('refuses a 28x28 PNG whose image data holds 1 of its 28 rows', () => {
    const file = writeFile('one-row.png', greyPng(28, 28, zlib.deflateSync(scanlines(28, 1))));

    expect(() => readImageFile(file)).toThrow(InputError);
    expect(() => readImageFile(file)).toThrow(
      /one-row\.png: truncated PNG image data: 28 x 28 needs 812 bytes .* 29 \(1 of 28 rows\)/,
    );
  });

  it('refuses a PNG whose compressed image data stops part way', () => {
    const whole = zlib.deflateSync(scanlines(28, 28, 0).map((_, i) => (i * 37) % 251));
    const file = writeFile('cut-stream.png', greyPng(28, 28, whole.subarray(0, whole.length / 2)));

    expect(() => readImageFile(file)).toThrow(/cut-stream\.png: truncated PNG image data/);
  });

  it('still reads whole PNGs of every colour type, and an interlaced one', () => {
    for (const colorType of [0, 2, 4, 6]) {
      const file = writePng(
        `type${colorType}.png`,
        28,
        28,
        new Array(28 * 28 * 4).fill(255),
        colorType,
      );
      expect(readImageFile(file).pixels.length).toBe(28 * 28);
    }

    // 5 x 3 interlaced: Adam7 passes 1, 4 and 6 hold rows here (pass 2 starts at column 4,
    // pass 3 at row 4, pass 5 at row 2, pass 7 at row 1)
    const passes = [
      [0, 0, 8, 8],
      [4, 0, 8, 8],
      [0, 4, 4, 8],
      [2, 0, 4, 4],
      [0, 2, 2, 4],
      [1, 0, 2, 2],
      [0, 1, 1, 2],
    ];
    const image = Array.from({ length: 15 }, (_, i) => 10 * i);
    const lines: number[] = [];
    for (const [column, row, columnStep, rowStep] of passes) {
      for (let y = row; y < 3; y += rowStep) {
        const pixels = [];
        for (let x = column; x < 5; x += columnStep) pixels.push(image[y * 5 + x]);
        if (pixels.length > 0) lines.push(0, ...pixels);
      }
    }
    const file = writeFile('adam7.png', greyPng(5, 3, zlib.deflateSync(Buffer.from(lines)), true));

    expectClose(
      readImageFile(file).pixels,
      image.map((level) => level / 255),
    );
  });

  it('reads the PNG size from its header and refuses one over the limit before decoding', () => {
    const file = writeFile('huge.png', greyPng(30000, 30000, Buffer.alloc(10)));
    const started = Date.now();

    expect(MAX_IMAGE_SIDE).toBe(4096);
    expect(() => readImageFile(file)).toThrow(
      /huge\.png: PNG image is 30000 x 30000 pixels, larger than the supported 4096 x 4096/,
    );
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('refuses a PGM over the size limit by its header', () => {
    const header = Buffer.from('P5\n30000 4000\n255\n', 'latin1');
    const bytes = Buffer.concat([header, Buffer.alloc(10)]);
    const file = writeFile('huge.pgm', bytes);

    expect(() => readImageFile(file)).toThrow(InputError);
    expect(() => readImageFile(file)).toThrow(
      /huge\.pgm: PGM image is 30000 x 4000 pixels, larger than the supported 4096 x 4096/,
    );
  });
});
