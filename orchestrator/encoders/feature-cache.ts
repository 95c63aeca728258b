import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { writeJsonAtomic } from '../util/atomic';
import { InputError } from '../util/errors';
import { readNpy, writeNpy } from '../util/npy';

/**
 * The feature cache: `<cacheDir>/<modality>-<key>.npy` holds float32 [N, D] features, and
 * `<cacheDir>/<modality>-<key>.json` says what produced them. An entry is reused only while
 * the encoder, the preprocessing version and the input array are the ones it records.
 */

export const FEATURE_CACHE_FORMAT = 'dyncim-feature-cache/1';

/** The metadata written beside each cached feature array. */
export interface FeatureCacheMetadata {
  format: typeof FEATURE_CACHE_FORMAT;
  modality: string;
  /** The encoder file as given when the entry was written (for people; sha256 decides). */
  encoderPath: string;
  encoderSha256: string;
  /** From the dataset's dataset.json modality entry. */
  preprocessingVersion: string;
  /** The dataset's `<modality>.npy`, and the sha256 of its bytes. */
  inputPath: string;
  inputSha256: string;
  /** [N, D]. */
  shape: [number, number];
  createdAt: string;
}

export interface CacheEntryPaths {
  arrayPath: string;
  metadataPath: string;
}

/** What a cache lookup must match: everything that determines the features. */
export interface CacheExpectation {
  encoderSha256: string;
  preprocessingVersion: string;
  inputSha256: string;
  /** N, the number of samples. */
  rows: number;
  /** D, the width of the encoder's feature rows (OnnxEncoder.featureWidth). */
  featureWidth: number;
}

export type CacheLookup =
  | { status: 'hit'; features: Float32Array; metadata: FeatureCacheMetadata }
  | { status: 'miss' | 'stale'; reason: string };

/** sha256 of a file's bytes, hex. */
export function sha256OfFile(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/**
 * The cache slot for a modality and an encoder: the encoder's file name without `.onnx`, and
 * without a leading `<modality>-`, so models/audio-resnet18.onnx caches to audio-resnet18.npy.
 */
export function cacheEntryPaths(options: {
  cacheDir: string;
  modality: string;
  encoderPath: string;
}): CacheEntryPaths {
  const encoderName = path.basename(options.encoderPath).replace(/\.onnx$/i, '');
  const prefix = `${options.modality}-`;
  const key = encoderName.startsWith(prefix) ? encoderName.slice(prefix.length) : encoderName;
  const stem = path.join(options.cacheDir, `${options.modality}-${key}`);
  return { arrayPath: `${stem}.npy`, metadataPath: `${stem}.json` };
}

function readMetadata(file: string): FeatureCacheMetadata {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new InputError(
      `feature cache metadata is not valid JSON (${(error as Error).message}); ` +
        'delete it to recompute the features',
      file,
    );
  }

  const metadata = parsed as Partial<FeatureCacheMetadata> | null;
  if (metadata?.format !== FEATURE_CACHE_FORMAT || !Array.isArray(metadata.shape)) {
    throw new InputError(
      `expected feature cache metadata with format '${FEATURE_CACHE_FORMAT}' and a shape, ` +
        `found format ${JSON.stringify(metadata?.format)}; delete it to recompute the features`,
      file,
    );
  }
  return metadata as FeatureCacheMetadata;
}

/** Why `metadata` does not describe the features wanted now, or undefined if it does. */
function staleReason(metadata: FeatureCacheMetadata, wanted: CacheExpectation): string | undefined {
  const fields = ['encoderSha256', 'preprocessingVersion', 'inputSha256'] as const;
  for (const field of fields) {
    if (metadata[field] !== wanted[field]) {
      return `${field} changed from ${metadata[field]} to ${wanted[field]}`;
    }
  }

  const [rows, width] = metadata.shape;
  const expected = `[${wanted.rows}, ${wanted.featureWidth}]`;
  if (metadata.shape.length !== 2 || rows !== wanted.rows) {
    return `cached shape [${metadata.shape}] is not ${expected}`;
  }
  if (width !== wanted.featureWidth) {
    return (
      `cached feature width ${width} is not the encoder's ${wanted.featureWidth} ` +
      `(cached shape [${metadata.shape}], expected ${expected})`
    );
  }
  return undefined;
}

/** Index of the first NaN or infinite value, or -1. */
function firstNonFinite(values: Float32Array): number {
  const isFinite = Number.isFinite;
  for (let i = 0; i < values.length; i++) if (!isFinite(values[i])) return i;
  return -1;
}

/** Loads the array and checks it is the [N, D] float32 array its metadata promises. */
function readCachedArray(entry: CacheEntryPaths, metadata: FeatureCacheMetadata): Float32Array {
  const array = readNpy(entry.arrayPath);
  const shapeMatches =
    array.shape.length === 2 &&
    array.shape[0] === metadata.shape[0] &&
    array.shape[1] === metadata.shape[1];

  if (!(array.data instanceof Float32Array) || !shapeMatches) {
    const dtype = array.data instanceof Float32Array ? 'float32' : array.data.constructor.name;
    throw new InputError(
      `cached features are ${dtype} [${array.shape}] but ${entry.metadataPath} records ` +
        `float32 [${metadata.shape}]; delete both files to recompute the features`,
      entry.arrayPath,
    );
  }

  // the encoder never writes NaN or Inf (OnnxEncoder.encode refuses it), so one here means the
  // file was altered or damaged after it was written: corrupt, like the mismatches above
  const bad = firstNonFinite(array.data);
  if (bad >= 0) {
    const width = metadata.shape[1];
    throw new InputError(
      `cached features hold ${array.data[bad]} at row ${Math.floor(bad / width)}, column ` +
        `${bad % width}; features must be finite: the file is corrupt, delete it and ` +
        `${entry.metadataPath} to recompute the features`,
      entry.arrayPath,
    );
  }
  return array.data;
}

/**
 * Looks up a cache entry. Returns 'miss' when there is none, 'stale' (with the reason) when it
 * was made from another encoder, preprocessing or input or has another feature width than the
 * encoder's, 'hit' with the features otherwise. A corrupt entry (unreadable, an array that
 * contradicts its metadata, or a NaN or infinite feature) is an InputError naming the file.
 */
export function lookupCache(entry: CacheEntryPaths, wanted: CacheExpectation): CacheLookup {
  const hasArray = fs.existsSync(entry.arrayPath);
  const hasMetadata = fs.existsSync(entry.metadataPath);
  if (!hasArray && !hasMetadata) return { status: 'miss', reason: 'no cache entry' };
  if (!hasArray || !hasMetadata) {
    const present = hasArray ? entry.arrayPath : entry.metadataPath;
    return { status: 'stale', reason: `incomplete cache entry (only ${present} exists)` };
  }

  const metadata = readMetadata(entry.metadataPath);
  const reason = staleReason(metadata, wanted);
  if (reason) return { status: 'stale', reason };

  return { status: 'hit', features: readCachedArray(entry, metadata), metadata };
}

/**
 * Writes an entry: the old metadata goes first, so a crash part way leaves an incomplete entry
 * (recomputed next time), never new features described by old metadata.
 */
export function writeCacheEntry(
  entry: CacheEntryPaths,
  features: Float32Array,
  metadata: FeatureCacheMetadata,
): void {
  fs.rmSync(entry.metadataPath, { force: true });
  writeNpy(entry.arrayPath, { data: features, shape: metadata.shape });
  writeJsonAtomic(entry.metadataPath, metadata);
}
