import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { decodeWav, encodeWav16, readWavFile } from '../orchestrator/data/wav';
import { InputError } from '../orchestrator/util/errors';

interface WavSpec {
  formatCode?: number;
  channels?: number;
  sampleRate?: number;
  bits?: number;
  data: Buffer;
  /** Chunks placed between fmt and data. */
  extraChunks?: Buffer[];
  /** Overrides the data chunk's declared size. */
  declaredDataSize?: number;
  extensibleSubformat?: number;
}

function chunk(id: string, body: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.write(id, 0, 'latin1');
  header.writeUInt32LE(body.length, 4);
  const pad = body.length % 2 === 1 ? Buffer.alloc(1) : Buffer.alloc(0);
  return Buffer.concat([header, body, pad]);
}

function formatBody(spec: WavSpec): Buffer {
  const channels = spec.channels ?? 1;
  const bits = spec.bits ?? 16;
  const rate = spec.sampleRate ?? 8000;
  const extensible = spec.extensibleSubformat !== undefined;
  const body = Buffer.alloc(extensible ? 40 : 16);
  body.writeUInt16LE(extensible ? 0xfffe : (spec.formatCode ?? 1), 0);
  body.writeUInt16LE(channels, 2);
  body.writeUInt32LE(rate, 4);
  // byte rate; wraps like a 32-bit field for absurd rates (the decoder does not read it)
  body.writeUInt32LE(((rate * channels * bits) / 8) % 2 ** 32, 8);
  body.writeUInt16LE((channels * bits) / 8, 12);
  body.writeUInt16LE(bits, 14);
  if (extensible) {
    body.writeUInt16LE(22, 16);
    body.writeUInt16LE(spec.extensibleSubformat!, 24);
  }
  return body;
}

function buildWav(spec: WavSpec): Buffer {
  const data = chunk('data', spec.data);
  if (spec.declaredDataSize !== undefined) data.writeUInt32LE(spec.declaredDataSize, 4);
  const body = Buffer.concat([
    Buffer.from('WAVE', 'latin1'),
    chunk('fmt ', formatBody(spec)),
    ...(spec.extraChunks ?? []),
    data,
  ]);
  const riff = Buffer.alloc(8);
  riff.write('RIFF', 0, 'latin1');
  riff.writeUInt32LE(body.length, 4);
  return Buffer.concat([riff, body]);
}

function int16(values: number[]): Buffer {
  const bytes = Buffer.alloc(values.length * 2);
  values.forEach((value, i) => bytes.writeInt16LE(value, 2 * i));
  return bytes;
}

function expectInputError(action: () => unknown, fragment: RegExp): void {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toMatch(/^clip\.wav: /);
    expect((error as Error).message).toMatch(fragment);
    return;
  }
  throw new Error('expected an InputError');
}

describe('decodeWav', () => {
  it('decodes 16-bit PCM to [-1, 1] at the declared rate', () => {
    const decoded = decodeWav(
      buildWav({ data: int16([0, 16384, -32768, 32767]), sampleRate: 22050 }),
    );

    expect(decoded.sampleRate).toBe(22050);
    expect(decoded.channels).toBe(1);
    expect(Array.from(decoded.samples)).toEqual([0, 0.5, -1, 32767 / 32768]);
  });

  it('decodes unsigned 8-bit with 128 as silence', () => {
    const decoded = decodeWav(buildWav({ bits: 8, data: Buffer.from([128, 192, 0]) }));

    expect(Array.from(decoded.samples)).toEqual([0, 0.5, -1]);
  });

  it('decodes 24-bit and 32-bit integer PCM', () => {
    const bits24 = Buffer.from([0x00, 0x00, 0x40, 0x00, 0x00, 0xc0]);
    const bits32 = Buffer.alloc(8);
    bits32.writeInt32LE(0x40000000, 0);
    bits32.writeInt32LE(-0x20000000, 4);

    expect(Array.from(decodeWav(buildWav({ bits: 24, data: bits24 })).samples)).toEqual([
      0.5, -0.5,
    ]);
    expect(Array.from(decodeWav(buildWav({ bits: 32, data: bits32 })).samples)).toEqual([
      0.5, -0.25,
    ]);
  });

  it('decodes 32-bit float and clips values beyond full scale', () => {
    const data = Buffer.alloc(12);
    [0.25, -0.75, 3].forEach((value, i) => data.writeFloatLE(value, 4 * i));

    const decoded = decodeWav(buildWav({ formatCode: 3, bits: 32, data }));

    expect(Array.from(decoded.samples)).toEqual([0.25, -0.75, 1]);
  });

  it('mixes stereo down to mono by averaging the channels', () => {
    const decoded = decodeWav(buildWav({ channels: 2, data: int16([16384, 0, -16384, -16384]) }));

    expect(decoded.channels).toBe(2);
    expect(Array.from(decoded.samples)).toEqual([0.25, -0.5]);
  });

  it('reads WAVE_FORMAT_EXTENSIBLE and skips unknown chunks, odd-sized ones included', () => {
    const list = chunk('LIST', Buffer.from('INFOabc', 'latin1'));

    const decoded = decodeWav(
      buildWav({ extensibleSubformat: 1, data: int16([8192]), extraChunks: [list] }),
    );

    expect(Array.from(decoded.samples)).toEqual([0.25]);
  });

  it('names the file and the problem for each kind of bad input', () => {
    const good = buildWav({ data: int16([1, 2]) });
    const notWave = Buffer.from(good);
    notWave.write('AVI ', 8, 'latin1');
    const formatOnly = chunk('fmt ', formatBody({ data: good }));
    const noData = Buffer.concat([good.subarray(0, 12), formatOnly]);
    const noFormat = Buffer.concat([good.subarray(0, 12), chunk('data', int16([1]))]);

    expectInputError(() => decodeWav(Buffer.from('ID3 not a wav file'), 'clip.wav'), /not a RIFF/);
    expectInputError(() => decodeWav(notWave, 'clip.wav'), /not WAVE/);
    expectInputError(() => decodeWav(noData, 'clip.wav'), /no 'data' chunk/);
    expectInputError(() => decodeWav(noFormat, 'clip.wav'), /no 'fmt' chunk/);
    expectInputError(
      () => decodeWav(buildWav({ formatCode: 2, data: int16([1]) }), 'clip.wav'),
      /unsupported encoding \(format code 2/,
    );
    expectInputError(
      () => decodeWav(buildWav({ bits: 12, data: int16([1]) }), 'clip.wav'),
      /unsupported encoding/,
    );
    expectInputError(
      () => decodeWav(buildWav({ data: int16([1, 2]), declaredDataSize: 400 }), 'clip.wav'),
      /declares 400 bytes but only 4 follow/,
    );
    expectInputError(
      () => decodeWav(buildWav({ data: Buffer.from([1, 2, 3]) }), 'clip.wav'),
      /not a whole number of 2-byte frames/,
    );
    expectInputError(
      () => decodeWav(buildWav({ data: Buffer.alloc(0) }), 'clip.wav'),
      /zero samples/,
    );
  });
});

describe('decodeWav header sanity', () => {
  it.each([4294967295, 1, 999, 384001])('rejects a header rate of %d Hz, naming it', (rate) => {
    const bytes = buildWav({ sampleRate: rate, data: int16([1, 2]) });

    expectInputError(
      () => decodeWav(bytes, 'clip.wav'),
      new RegExp(`sample rate ${rate} Hz is outside the supported 1000 to 384000 Hz`),
    );
  });

  it('accepts the rates at both limits', () => {
    for (const rate of [1000, 384000]) {
      expect(decodeWav(buildWav({ sampleRate: rate, data: int16([1]) })).sampleRate).toBe(rate);
    }
  });

  it('says a fmt chunk cut short by the end of the file is truncated', () => {
    // a 30-byte file: RIFF header, fmt chunk header declaring 16 bytes, 10 of them present
    const bytes = buildWav({ data: int16([1, 2]) }).subarray(0, 30);

    expectInputError(
      () => decodeWav(bytes, 'clip.wav'),
      /truncated fmt chunk: it says 16 bytes but only 10 are present/,
    );
  });

  it('still names a fmt chunk that declares fewer than 16 bytes', () => {
    const good = buildWav({ data: int16([1]) });
    const short = Buffer.concat([
      good.subarray(0, 12),
      chunk('fmt ', Buffer.alloc(14)),
      chunk('data', int16([1])),
    ]);

    expectInputError(
      () => decodeWav(short, 'clip.wav'),
      /fmt chunk is 14 bytes, expected at least 16/,
    );
  });
});

describe('encodeWav16', () => {
  it('round-trips through decodeWav within one quantisation step', () => {
    const samples = new Float32Array([0, 0.5, -0.5, 1, -1, 0.123]);

    const decoded = decodeWav(encodeWav16({ samples, sampleRate: 16000 }));

    expect(decoded.sampleRate).toBe(16000);
    decoded.samples.forEach((value, i) => expect(Math.abs(value - samples[i])).toBeLessThan(1e-4));
  });

  it('writes the canonical 44-byte header', () => {
    const bytes = encodeWav16({ samples: [0.25, -0.25], sampleRate: 8000 });

    expect(bytes.length).toBe(48);
    expect(bytes.readUInt32LE(4)).toBe(40);
    expect(bytes.readUInt32LE(28)).toBe(16000);
    expect(bytes.readInt16LE(44)).toBe(8192);
    expect(bytes.readInt16LE(46)).toBe(-8192);
  });
});

describe('readWavFile', () => {
  it('reads a file and names a missing one', () => {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dyncim-wav-'));
    const file = path.join(folder, 'tone.wav');
    fs.writeFileSync(file, encodeWav16({ samples: [0.5, -0.5], sampleRate: 8000 }));

    expect(readWavFile(file).samples.length).toBe(2);
    expect(() => readWavFile(path.join(folder, 'absent.wav'))).toThrow(
      /absent\.wav: file not found/,
    );
    fs.rmSync(folder, { recursive: true, force: true });
  });

  const fsddFile = '/work/shared/data/fsdd/recordings/7_jackson_32.wav';
  (fs.existsSync(fsddFile) ? it : it.skip)('decodes a real FSDD recording (8 kHz mono)', () => {
    const decoded = readWavFile(fsddFile);

    expect(decoded.sampleRate).toBe(8000);
    expect(decoded.channels).toBe(1);
    expect(decoded.samples.length).toBe((fs.statSync(fsddFile).size - 44) / 2);
  });
});
