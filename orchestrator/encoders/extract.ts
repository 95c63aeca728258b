import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { Logger } from 'pino';
import { MANIFEST_FILE, ModalityEntry, readManifest } from '../data/manifest';
import { ConfigError, InputError } from '../util/errors';
import { componentLogger } from '../util/logger';
import { createProgress } from '../util/progress';
import { decodeNpy, NpyArray } from '../util/npy';
import { Device } from './execution-provider';
import {
  CacheEntryPaths,
  cacheEntryPaths,
  CacheExpectation,
  FEATURE_CACHE_FORMAT,
  lookupCache,
  sha256OfFile,
  writeCacheEntry,
} from './feature-cache';
import { OnnxEncoder } from './onnx-encoder';

/**
 * Batched feature extraction with a cache: a dataset's `<modality>.npy` inputs go through a
 * frozen encoder once, and later runs reuse the features while nothing they depend on changed.
 */

export interface ExtractFeaturesOptions {
  /** Dataset folder holding dataset.json and `<modality>.npy` [N, C, H, W]. */
  datasetDir: string;
  /** Modality name, as listed in dataset.json. */
  modality: string;
  /** The encoder's .onnx file. */
  encoderPath: string;
  /** Folder for `<modality>-<key>.npy` and `.json`; created if needed. */
  cacheDir: string;
  /** Samples per encoder call. Default 64. */
  batchSize?: number;
  /** 'auto' (default), 'cpu' or 'cuda'. */
  device?: Device;
}

export interface ExtractedFeatures {
  /** Row-major [N, D]. */
  features: Float32Array;
  shape: [number, number];
  encoderSha256: string;
  /** The cached .npy file. */
  cachePath: string;
  /** True when the features came from the cache, not the encoder. */
  cacheHit: boolean;
}

const DEFAULT_BATCH_SIZE = 64;
const PROGRESS_LOG_STEPS = 10;

/** The modalities dataset.json lists, in order (read and checked by the dataset module). */
export function listDatasetModalities(datasetDir: string): ModalityEntry[] {
  return readManifest(path.join(datasetDir, MANIFEST_FILE)).modalities;
}

/** What the manifest says about one modality: its preprocessing version and sample count. */
function modalityFacts(datasetDir: string, modality: string) {
  const file = path.join(datasetDir, MANIFEST_FILE);
  const manifest = readManifest(file);
  const entry = manifest.modalities.find((candidate) => candidate.name === modality);

  if (!entry) {
    const names = manifest.modalities.map((candidate) => candidate.name).join(', ');
    throw new InputError(`modality '${modality}' is not in the dataset (it has: ${names})`, file);
  }
  return { preprocessingVersion: entry.preprocessing, sampleCount: manifest.samples.length };
}

/** Checks that `<modality>.npy` is finite float32 [N, C, H, W] for this encoder. */
function checkEncoderInputs(array: NpyArray, file: string, encoder: OnnxEncoder): Float32Array {
  const [rows, ...sample] = array.shape;
  const expected = `float32 [N, ${encoder.inputShape.join(', ')}]`;
  const fits =
    array.data instanceof Float32Array &&
    array.shape.length === 4 &&
    rows > 0 &&
    sample.every((size, axis) => size === encoder.inputShape[axis]);

  if (!fits) {
    throw new InputError(
      `expected ${expected} for encoder ${encoder.modelPath}, found ` +
        `${array.data.constructor.name} [${array.shape}]`,
      file,
    );
  }
  const data = array.data as Float32Array;
  checkFinite(data, encoder.sampleSize, file);
  return data;
}

function checkFinite(data: Float32Array, sampleSize: number, file: string): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      const sample = Math.floor(i / sampleSize);
      throw new InputError(`sample ${sample} holds ${data[i]}; inputs must be finite`, file);
    }
  }
}

/** Runs the encoder over every sample in batches; logs progress every tenth of the way. */
async function encodeAll(
  encoder: OnnxEncoder,
  inputs: Float32Array,
  options: { batchSize: number; modality: string; log: Logger },
): Promise<Float32Array> {
  const { batchSize, modality, log } = options;
  const sampleSize = encoder.sampleSize;
  const rows = inputs.length / sampleSize;
  const features = new Float32Array(rows * encoder.featureWidth);
  const progress = createProgress(`encoding ${modality}`, Math.ceil(rows / batchSize));
  const started = Date.now();
  let nextLog = 1;

  for (let start = 0; start < rows; start += batchSize) {
    const count = Math.min(batchSize, rows - start);
    const batch = inputs.subarray(start * sampleSize, (start + count) * sampleSize);
    features.set(await encoder.encode(batch, count), start * encoder.featureWidth);
    progress.tick();

    const done = start + count;
    if (done >= (nextLog * rows) / PROGRESS_LOG_STEPS) {
      nextLog = Math.floor((done * PROGRESS_LOG_STEPS) / rows) + 1;
      log.info({ done, total: rows, seconds: (Date.now() - started) / 1000 }, 'encoding');
    }
  }

  progress.stop();
  return features;
}

interface ExtractionPlan {
  inputPath: string;
  inputArray: NpyArray;
  /** All the cache must match but the feature width, which comes from the loaded encoder. */
  wanted: Omit<CacheExpectation, 'featureWidth'>;
  entry: CacheEntryPaths;
}

/** Reads the inputs once and works out everything the cache entry must match. */
function planExtraction(options: ExtractFeaturesOptions): ExtractionPlan {
  const { datasetDir, modality, encoderPath, cacheDir } = options;
  const inputPath = path.join(datasetDir, `${modality}.npy`);
  if (!fs.existsSync(inputPath)) throw new InputError('modality input array not found', inputPath);
  if (!fs.existsSync(encoderPath)) throw new InputError('encoder file not found', encoderPath);

  const facts = modalityFacts(datasetDir, modality);
  const inputBytes = fs.readFileSync(inputPath);
  const inputArray = decodeNpy(inputBytes, inputPath);
  if (inputArray.shape[0] !== facts.sampleCount) {
    const rows = `holds ${inputArray.shape[0]} rows [${inputArray.shape}]`;
    const manifest = `${MANIFEST_FILE} lists ${facts.sampleCount} samples`;
    throw new InputError(`${rows} but ${manifest}`, inputPath);
  }

  const wanted: ExtractionPlan['wanted'] = {
    encoderSha256: sha256OfFile(encoderPath),
    preprocessingVersion: facts.preprocessingVersion,
    inputSha256: createHash('sha256').update(inputBytes).digest('hex'),
    rows: facts.sampleCount,
  };

  const entry = cacheEntryPaths({ cacheDir, modality, encoderPath });
  return { inputPath, inputArray, wanted, entry };
}

/** Encodes every sample and writes the cache entry. */
async function computeAndCache(
  encoder: OnnxEncoder,
  options: ExtractFeaturesOptions & { batchSize: number },
  plan: ExtractionPlan,
  log: Logger,
): Promise<ExtractedFeatures> {
  const { modality, encoderPath, batchSize } = options;
  const inputs = checkEncoderInputs(plan.inputArray, plan.inputPath, encoder);
  const shape: [number, number] = [plan.wanted.rows, encoder.featureWidth];
  const provider = encoder.provider;
  log.info({ samples: shape[0], batchSize, provider, encoderPath }, 'extracting features');
  const features = await encodeAll(encoder, inputs, { batchSize, modality, log });

  writeCacheEntry(plan.entry, features, {
    format: FEATURE_CACHE_FORMAT,
    modality,
    encoderPath,
    encoderSha256: encoder.sha256,
    preprocessingVersion: plan.wanted.preprocessingVersion,
    inputPath: plan.inputPath,
    inputSha256: plan.wanted.inputSha256,
    shape,
    createdAt: new Date().toISOString(),
  });
  log.info({ path: plan.entry.arrayPath, shape }, 'features written');

  const cachePath = plan.entry.arrayPath;
  return { features, shape, encoderSha256: encoder.sha256, cachePath, cacheHit: false };
}

/**
 * Features of one modality of a dataset: from the cache when it matches the encoder (its
 * sha256 and its feature width), the preprocessing version and the input array, otherwise
 * computed by the encoder and cached. The encoder is loaded either way: its feature width
 * is only known from a session.
 */
export async function extractFeatures(options: ExtractFeaturesOptions): Promise<ExtractedFeatures> {
  const log = componentLogger('extract', { modality: options.modality });
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new ConfigError(`batchSize: expected a positive integer, received ${batchSize}`);
  }

  const plan = planExtraction(options);
  const { encoderPath, device } = options;
  const encoder = await OnnxEncoder.create({ modelPath: encoderPath, device });

  try {
    const featureWidth = encoder.featureWidth;
    const lookup = lookupCache(plan.entry, { ...plan.wanted, featureWidth });
    if (lookup.status !== 'hit') {
      log.info({ path: plan.entry.arrayPath, reason: lookup.reason }, `cache ${lookup.status}`);
      return await computeAndCache(encoder, { ...options, batchSize }, plan, log);
    }

    log.info({ path: plan.entry.arrayPath, shape: lookup.metadata.shape }, 'cache hit');
    return {
      features: lookup.features,
      shape: lookup.metadata.shape,
      encoderSha256: plan.wanted.encoderSha256,
      cachePath: plan.entry.arrayPath,
      cacheHit: true,
    };
  } finally {
    await encoder.dispose();
  }
}
