import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  cacheEntryPaths,
  CacheEntryPaths,
  CacheExpectation,
  FEATURE_CACHE_FORMAT,
  FeatureCacheMetadata,
  lookupCache,
  sha256OfFile,
  writeCacheEntry,
} from '../orchestrator/encoders/feature-cache';
import { InputError } from '../orchestrator/util/errors';
import { readNpy, writeNpy } from '../orchestrator/util/npy';

let scratch: string;
let entry: CacheEntryPaths;

const WANTED: CacheExpectation = {
  encoderSha256: 'e'.repeat(64),
  preprocessingVersion: 'audio-logmel-v1',
  inputSha256: 'i'.repeat(64),
  rows: 2,
  featureWidth: 3,
};

function metadataFor(wanted: CacheExpectation, width = 3): FeatureCacheMetadata {
  return {
    format: FEATURE_CACHE_FORMAT,
    modality: 'audio',
    encoderPath: 'models/audio-resnet18.onnx',
    encoderSha256: wanted.encoderSha256,
    preprocessingVersion: wanted.preprocessingVersion,
    inputPath: 'dataset/audio.npy',
    inputSha256: wanted.inputSha256,
    shape: [wanted.rows, width],
    createdAt: '2025-01-01T00:00:00.000Z',
  };
}

const FEATURES = Float32Array.from([1, 2, 3, 4, 5, 6]);

beforeEach(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'dyncim-feature-cache-'));
  entry = cacheEntryPaths({
    cacheDir: scratch,
    modality: 'audio',
    encoderPath: 'models/audio-resnet18.onnx',
  });
});

afterEach(() => {
  fs.rmSync(scratch, { recursive: true, force: true });
});

describe('cacheEntryPaths', () => {
  test('drops the modality prefix of the encoder name from the key', () => {
    expect(entry.arrayPath).toBe(path.join(scratch, 'audio-resnet18.npy'));
    expect(entry.metadataPath).toBe(path.join(scratch, 'audio-resnet18.json'));
  });

  test('keeps an encoder name without the prefix whole', () => {
    const other = cacheEntryPaths({
      cacheDir: 'cache',
      modality: 'visual',
      encoderPath: 'x/vit.onnx',
    });

    expect(other.arrayPath).toBe(path.join('cache', 'visual-vit.npy'));
  });
});

describe('sha256OfFile', () => {
  test('hashes the bytes of a file', () => {
    const file = path.join(scratch, 'abc.txt');
    fs.writeFileSync(file, 'abc');

    // the sha256 test vector for "abc" (FIPS 180-2)
    expect(sha256OfFile(file)).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });
});

describe('writeCacheEntry and lookupCache', () => {
  test('an empty folder is a miss', () => {
    expect(lookupCache(entry, WANTED)).toEqual({ status: 'miss', reason: 'no cache entry' });
  });

  test('a written entry is a hit with the same features and metadata', () => {
    writeCacheEntry(entry, FEATURES, metadataFor(WANTED));

    const lookup = lookupCache(entry, WANTED);

    expect(lookup.status).toBe('hit');
    if (lookup.status !== 'hit') return;
    expect(Array.from(lookup.features)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(lookup.metadata).toEqual(metadataFor(WANTED));
    expect(readNpy(entry.arrayPath).shape).toEqual([2, 3]);
  });

  const changes: [keyof CacheExpectation, string | number][] = [
    ['encoderSha256', 'f'.repeat(64)],
    ['preprocessingVersion', 'audio-logmel-v2'],
    ['inputSha256', 'j'.repeat(64)],
  ];

  test.each(changes)('a different %s makes the entry stale, naming both values', (field, value) => {
    writeCacheEntry(entry, FEATURES, metadataFor(WANTED));

    const lookup = lookupCache(entry, { ...WANTED, [field]: value });

    expect(lookup).toEqual({
      status: 'stale',
      reason: `${field} changed from ${WANTED[field]} to ${value}`,
    });
  });

  test('metadata with another number of rows is stale (wrong shape)', () => {
    writeCacheEntry(entry, FEATURES, metadataFor(WANTED));

    const lookup = lookupCache(entry, { ...WANTED, rows: 5 });

    expect(lookup).toEqual({ status: 'stale', reason: 'cached shape [2,3] is not [5, 3]' });
  });

  test("an entry of another width than the encoder's is stale, naming both widths", () => {
    // the .npy and its .json agree with each other, on a width the encoder does not output
    writeCacheEntry(entry, new Float32Array(2 * 256), metadataFor(WANTED, 256));

    const lookup = lookupCache(entry, { ...WANTED, featureWidth: 512 });

    expect(lookup).toEqual({
      status: 'stale',
      reason:
        "cached feature width 256 is not the encoder's 512 (cached shape [2,256], " +
        'expected [2, 512])',
    });
  });

  test('features without metadata are an incomplete, stale entry', () => {
    writeNpy(entry.arrayPath, { data: FEATURES, shape: [2, 3] });

    const lookup = lookupCache(entry, WANTED);

    expect(lookup.status).toBe('stale');
    expect(lookup.status !== 'hit' && lookup.reason).toMatch(/incomplete cache entry/);
  });

  test('rewriting an entry replaces both files', () => {
    writeCacheEntry(entry, FEATURES, metadataFor(WANTED));
    const newer = { ...WANTED, encoderSha256: 'f'.repeat(64) };

    writeCacheEntry(entry, Float32Array.from([7, 8]), metadataFor(newer, 1));
    const lookup = lookupCache(entry, { ...newer, featureWidth: 1 });

    expect(lookup.status === 'hit' && Array.from(lookup.features)).toEqual([7, 8]);
    expect(fs.readdirSync(scratch).sort()).toEqual(['audio-resnet18.json', 'audio-resnet18.npy']);
  });
});

describe('lookupCache on corrupt entries', () => {
  test('EXPECTED FAILURE: an array whose shape contradicts its metadata names the file', () => {
    writeCacheEntry(entry, FEATURES, metadataFor(WANTED));
    writeNpy(entry.arrayPath, { data: FEATURES, shape: [3, 2] });

    const error = (() => {
      try {
        lookupCache(entry, WANTED);
      } catch (caught) {
        return caught as InputError;
      }
    })();

    expect(error).toBeInstanceOf(InputError);
    expect(error?.path).toBe(entry.arrayPath);
    expect(error?.message).toMatch(
      /cached features are float32 \[3,2\] but .* records float32 \[2,3\]/,
    );
  });

  test('EXPECTED FAILURE: a truncated array names the file', () => {
    writeCacheEntry(entry, FEATURES, metadataFor(WANTED));
    const bytes = fs.readFileSync(entry.arrayPath);
    fs.writeFileSync(entry.arrayPath, bytes.subarray(0, bytes.length - 4));

    expect(() => lookupCache(entry, WANTED)).toThrow(
      `${entry.arrayPath}: .npy body holds 20 bytes`,
    );
  });

  test('EXPECTED FAILURE: metadata that is not JSON names the file', () => {
    writeCacheEntry(entry, FEATURES, metadataFor(WANTED));
    fs.writeFileSync(entry.metadataPath, '{"format": ');

    expect(() => lookupCache(entry, WANTED)).toThrow(
      new RegExp(`^${entry.metadataPath}: feature cache metadata is not valid JSON`),
    );
  });

  test('EXPECTED FAILURE: metadata of another format names the file and the format', () => {
    writeCacheEntry(entry, FEATURES, metadataFor(WANTED));
    fs.writeFileSync(entry.metadataPath, JSON.stringify({ format: 'something-else' }));

    expect(() => lookupCache(entry, WANTED)).toThrow(/found format "something-else"/);
  });

  test.each([NaN, Infinity])(
    'EXPECTED FAILURE: a cached %p names the file, the row and the column',
    (value) => {
      const features = Float32Array.from(FEATURES);
      features[4] = value;
      writeCacheEntry(entry, features, metadataFor(WANTED));

      expect(() => lookupCache(entry, WANTED)).toThrow(InputError);
      expect(() => lookupCache(entry, WANTED)).toThrow(
        `${entry.arrayPath}: cached features hold ${value} at row 1, column 1; features must ` +
          `be finite: the file is corrupt, delete it and ${entry.metadataPath} to recompute`,
      );
    },
  );
});
