import * as fs from 'fs';
import { InputError } from '../util/errors';

/**
 * RIFF/WAVE decoding for the audio sources (FSDD recordings, espeak-ng output) and a 16-bit
 * encoder for tests and synthesis. Only what spoken-digit data needs: integer PCM of 8, 16, 24
 * or 32 bits, 32/64-bit IEEE float, any channel count (mixed down to mono).
 */

/** A decoded clip: mono samples in [-1, 1]. */
export interface DecodedAudio {
  samples: Float32Array;
  sampleRate: number;
  /** Channel count in the file, before the mix-down. */
  channels: number;
}

/** Options of `encodeWav16`. */
export interface EncodeWavOptions {
  /** Mono samples; values outside [-1, 1] are clipped. */
  samples: Float32Array | number[];
  /** Samples per second, e.g. 8000. */
  sampleRate: number;
}

interface FormatChunk {
  /** 1 = integer PCM, 3 = IEEE float (WAVE_FORMAT_EXTENSIBLE resolved to one of these). */
  encoding: number;
  channels: number;
  sampleRate: number;
  bitsPerSample: number;
  blockAlign: number;
}

interface Chunk {
  id: string;
  start: number;
  size: number;
}

const PCM = 1;
const IEEE_FLOAT = 3;
const EXTENSIBLE = 0xfffe;

/**
 * Sample rates a recording may declare, in Hz: 1 kHz (below any speech use) to 384 kHz (the
 * highest common studio rate). A rate outside this range is a corrupt header, and honouring it
 * would be harmful: 4294967295 Hz resamples a clip to nothing, 1 Hz to millions of samples.
 */
export const SAMPLE_RATE_LIMITS_HZ = { min: 1000, max: 384000 } as const;

/** The problem with a sample rate in words, or undefined when it is within the limits. */
export function sampleRateProblem(sampleRate: number): string | undefined {
  const { min, max } = SAMPLE_RATE_LIMITS_HZ;
  if (Number.isFinite(sampleRate) && sampleRate >= min && sampleRate <= max) return undefined;
  return `sample rate ${sampleRate} Hz is outside the supported ${min} to ${max} Hz`;
}

function readChunks(bytes: Buffer): Chunk[] {
  const chunks: Chunk[] = [];
  let offset = 12;

  while (offset + 8 <= bytes.length) {
    const id = bytes.toString('latin1', offset, offset + 4);
    const size = bytes.readUInt32LE(offset + 4);
    chunks.push({ id, start: offset + 8, size });

    // chunks are padded to an even length (RIFF rule); the pad byte is not in `size`
    offset += 8 + size + (size % 2);
  }

  return chunks;
}

function parseFormat(bytes: Buffer, chunk: Chunk, file: string): FormatChunk {
  if (chunk.size < 16) {
    throw new InputError(`fmt chunk is ${chunk.size} bytes, expected at least 16`, file);
  }
  const present = Math.max(0, bytes.length - chunk.start);
  if (chunk.size > present) {
    throw new InputError(
      `truncated fmt chunk: it says ${chunk.size} bytes but only ${present} are present`,
      file,
    );
  }

  const at = chunk.start;
  let encoding = bytes.readUInt16LE(at);
  const format: FormatChunk = {
    encoding,
    channels: bytes.readUInt16LE(at + 2),
    sampleRate: bytes.readUInt32LE(at + 4),
    blockAlign: bytes.readUInt16LE(at + 12),
    bitsPerSample: bytes.readUInt16LE(at + 14),
  };

  // WAVE_FORMAT_EXTENSIBLE keeps the real format code in the first two bytes of its GUID
  if (encoding === EXTENSIBLE) {
    if (chunk.size < 40) {
      throw new InputError('WAVE_FORMAT_EXTENSIBLE fmt chunk is too short', file);
    }
    encoding = bytes.readUInt16LE(at + 24);
    format.encoding = encoding;
  }

  checkFormat(format, file);
  return format;
}

function checkFormat(format: FormatChunk, file: string): void {
  const supportedInteger =
    format.encoding === PCM && [8, 16, 24, 32].includes(format.bitsPerSample);
  const supportedFloat = format.encoding === IEEE_FLOAT && [32, 64].includes(format.bitsPerSample);
  if (!supportedInteger && !supportedFloat) {
    throw new InputError(
      `unsupported encoding (format code ${format.encoding}, ${format.bitsPerSample} bits); ` +
        'expected integer PCM of 8/16/24/32 bits or 32/64-bit float',
      file,
    );
  }

  if (format.channels < 1) throw new InputError('fmt chunk declares 0 channels', file);
  const rateProblem = sampleRateProblem(format.sampleRate);
  if (rateProblem) throw new InputError(`fmt chunk: ${rateProblem}`, file);

  const expectedAlign = format.channels * (format.bitsPerSample / 8);
  if (format.blockAlign !== expectedAlign) {
    throw new InputError(
      `fmt chunk block align is ${format.blockAlign}, expected ${expectedAlign} ` +
        `(${format.channels} channels x ${format.bitsPerSample} bits)`,
      file,
    );
  }
}

/** Returns a reader for one sample at a byte offset, scaled to [-1, 1]. */
function sampleReader(bytes: Buffer, format: FormatChunk): (offset: number) => number {
  if (format.encoding === IEEE_FLOAT) {
    return format.bitsPerSample === 32
      ? (offset) => bytes.readFloatLE(offset)
      : (offset) => bytes.readDoubleLE(offset);
  }

  switch (format.bitsPerSample) {
    case 8:
      // 8-bit WAV is unsigned with 128 as silence
      return (offset) => (bytes[offset] - 128) / 128;
    case 16:
      return (offset) => bytes.readInt16LE(offset) / 32768;
    case 24:
      return (offset) => bytes.readIntLE(offset, 3) / 8388608;
    default:
      return (offset) => bytes.readInt32LE(offset) / 2147483648;
  }
}

function mixDown(bytes: Buffer, data: Chunk, format: FormatChunk): Float32Array {
  const frames = data.size / format.blockAlign;
  const bytesPerSample = format.bitsPerSample / 8;
  const read = sampleReader(bytes, format);
  const samples = new Float32Array(frames);

  for (let frame = 0; frame < frames; frame++) {
    const frameStart = data.start + frame * format.blockAlign;
    let sum = 0;
    for (let channel = 0; channel < format.channels; channel++) {
      sum += read(frameStart + channel * bytesPerSample);
    }
    // float files may exceed full scale; the contract of this module is [-1, 1]
    samples[frame] = Math.max(-1, Math.min(1, sum / format.channels));
  }

  return samples;
}

function findChunk(chunks: Chunk[], id: string, file: string): Chunk {
  const chunk = chunks.find((candidate) => candidate.id === id);
  if (!chunk) {
    const seen = chunks.map((candidate) => JSON.stringify(candidate.id)).join(', ');
    throw new InputError(`WAVE file has no '${id.trim()}' chunk (chunks found: ${seen})`, file);
  }
  return chunk;
}

function checkDataChunk(bytes: Buffer, data: Chunk, format: FormatChunk, file: string): void {
  const available = bytes.length - data.start;
  if (data.size > available) {
    throw new InputError(
      `data chunk declares ${data.size} bytes but only ${available} follow (file is truncated)`,
      file,
    );
  }

  if (data.size % format.blockAlign !== 0) {
    throw new InputError(
      `data chunk holds ${data.size} bytes, not a whole number of ` +
        `${format.blockAlign}-byte frames (file is truncated or corrupt)`,
      file,
    );
  }

  if (data.size === 0) throw new InputError('WAVE file holds zero samples', file);
}

/**
 * Decodes RIFF/WAVE bytes into mono samples in [-1, 1]. Chunks other than fmt and data (LIST,
 * fact, cue, ...) are skipped. `file` names the source in errors.
 */
export function decodeWav(bytes: Buffer, file = '<buffer>'): DecodedAudio {
  if (bytes.length < 12 || bytes.toString('latin1', 0, 4) !== 'RIFF') {
    throw new InputError('not a RIFF file (expected "RIFF" in the first 4 bytes)', file);
  }
  if (bytes.toString('latin1', 8, 12) !== 'WAVE') {
    throw new InputError('RIFF file is not WAVE (expected "WAVE" at byte 8)', file);
  }

  const chunks = readChunks(bytes);
  const format = parseFormat(bytes, findChunk(chunks, 'fmt ', file), file);
  const data = findChunk(chunks, 'data', file);
  checkDataChunk(bytes, data, format, file);

  return {
    samples: mixDown(bytes, data, format),
    sampleRate: format.sampleRate,
    channels: format.channels,
  };
}

/** Reads and decodes a WAV file; errors name the file. */
export function readWavFile(file: string): DecodedAudio {
  if (!fs.existsSync(file)) throw new InputError('file not found', file);
  return decodeWav(fs.readFileSync(file), file);
}

/** Encodes mono samples as a 16-bit PCM WAV file (44-byte header). */
export function encodeWav16(options: EncodeWavOptions): Buffer {
  const { samples, sampleRate } = options;
  const dataSize = samples.length * 2;
  const bytes = Buffer.alloc(44 + dataSize);

  bytes.write('RIFF', 0, 'latin1');
  bytes.writeUInt32LE(36 + dataSize, 4);
  bytes.write('WAVE', 8, 'latin1');
  bytes.write('fmt ', 12, 'latin1');
  bytes.writeUInt32LE(16, 16);
  bytes.writeUInt16LE(PCM, 20);
  bytes.writeUInt16LE(1, 22);
  bytes.writeUInt32LE(sampleRate, 24);
  bytes.writeUInt32LE(sampleRate * 2, 28);
  bytes.writeUInt16LE(2, 32);
  bytes.writeUInt16LE(16, 34);
  bytes.write('data', 36, 'latin1');
  bytes.writeUInt32LE(dataSize, 40);

  for (let i = 0; i < samples.length; i++) {
    const clipped = Math.max(-1, Math.min(1, samples[i]));
    // 32767 keeps +1.0 representable; -1.0 maps to -32767, which the decoder reads as -0.99997
    bytes.writeInt16LE(Math.round(clipped * 32767), 44 + 2 * i);
  }

  return bytes;
}
