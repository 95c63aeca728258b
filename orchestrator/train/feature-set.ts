import * as fs from 'fs';
import * as path from 'path';
import { InputError, ShapeError } from '../util/errors';
import { readNpy } from '../util/npy';
import { writeJsonAtomic } from '../util/atomic';
import { MANIFEST_FILE, readManifest } from '../data/manifest';

/**
 * Frozen features of a whole dataset, held in memory: one row per sample and modality.
 * The training step reads these; it never loads an encoder.
 */

export type SplitName = 'train' | 'val' | 'test';

export interface ModalityFeatures {
  name: string;
  /** Feature width D_m. */
  width: number;
  /** sha256 of the encoder that produced them. */
  encoderSha256?: string;
  /** Row-major [N, width]. */
  data: Float32Array;
}

export interface FeatureSet {
  classNames: string[];
  labels: Int32Array;
  splits: SplitName[];
  modalities: ModalityFeatures[];
}

/** Written next to extracted features so the training process finds them without ONNX. */
export interface FeatureIndex {
  format: 'dyncim-features/1';
  /** The dataset folder the features belong to. */
  datasetDir: string;
  modalities: Array<{
    name: string;
    /** Path of the .npy file, absolute or relative to the index file. */
    file: string;
    shape: [number, number];
    encoderSha256: string;
  }>;
}

export const FEATURE_INDEX_FILE = 'features.json';

export function writeFeatureIndex(file: string, index: FeatureIndex): void {
  writeJsonAtomic(file, index);
}

function readJson(file: string): unknown {
  if (!fs.existsSync(file)) throw new InputError('file not found', file);
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new InputError(`not valid JSON (${(error as Error).message})`, file);
  }
}

function checkFinite(values: Float32Array, file: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw new InputError(`feature value ${i} is ${values[i]}; features must be finite`, file);
    }
  }
}

/** Checks the index's structure, so a hand-edited file fails with its name, not a TypeError. */
function checkIndex(value: unknown, file: string): FeatureIndex {
  const index = value as Partial<FeatureIndex> | null;
  if (typeof index !== 'object' || index === null || index.format !== 'dyncim-features/1') {
    const format = JSON.stringify((index as { format?: unknown } | null)?.format);
    throw new InputError(`not a dyncim feature index (format ${format})`, file);
  }
  if (typeof index.datasetDir !== 'string') {
    throw new InputError('"datasetDir" must name the dataset folder', file);
  }
  if (!Array.isArray(index.modalities) || index.modalities.length === 0) {
    throw new InputError('"modalities" must be a non-empty list', file);
  }

  index.modalities.forEach((entry, i) => {
    const ok =
      typeof entry === 'object' &&
      entry !== null &&
      typeof entry.name === 'string' &&
      typeof entry.file === 'string' &&
      typeof entry.encoderSha256 === 'string';
    if (!ok) {
      throw new InputError(`modalities[${i}] needs string fields name, file, encoderSha256`, file);
    }
  });
  return index as FeatureIndex;
}

function loadModality(entry: FeatureIndex['modalities'][number], indexFile: string, rows: number) {
  const file = path.resolve(path.dirname(indexFile), entry.file);
  const array = readNpy(file);

  if (array.shape.length !== 2 || !(array.data instanceof Float32Array)) {
    throw new InputError(`expected a float32 [N, D] array, got shape [${array.shape}]`, file);
  }
  if (array.shape[0] !== rows) {
    throw new InputError(`holds ${array.shape[0]} rows but the dataset has ${rows} samples`, file);
  }
  if (Array.isArray(entry.shape) && array.shape[1] !== entry.shape[1]) {
    throw new InputError(
      `width ${array.shape[1]} does not match ${entry.shape[1]} recorded in ${indexFile}`,
      file,
    );
  }
  checkFinite(array.data, file);

  return {
    name: entry.name,
    width: array.shape[1],
    encoderSha256: entry.encoderSha256,
    data: array.data,
  };
}

/** Reads a feature index and the dataset manifest it points to. */
export function loadFeatureSet(indexFile: string): FeatureSet {
  const index = checkIndex(readJson(indexFile), indexFile);
  const datasetDir = path.resolve(path.dirname(indexFile), index.datasetDir);
  const manifest = readManifest(path.join(datasetDir, MANIFEST_FILE));
  const samples = manifest.samples;

  const featureSet: FeatureSet = {
    classNames: manifest.classes,
    labels: Int32Array.from(samples.map((sample) => sample.label)),
    splits: samples.map((sample) => sample.split),
    modalities: index.modalities.map((entry) => loadModality(entry, indexFile, samples.length)),
  };

  try {
    validateFeatureSet(featureSet);
  } catch (error) {
    if (error instanceof ShapeError) throw new InputError(error.message, indexFile);
    throw error;
  }
  return featureSet;
}

/** Checks that labels, splits and every modality agree in length and range. */
export function validateFeatureSet(set: FeatureSet): void {
  const rows = set.labels.length;
  if (set.splits.length !== rows) {
    throw new ShapeError(`${set.splits.length} split entries for ${rows} labels`);
  }

  for (const modality of set.modalities) {
    if (modality.data.length !== rows * modality.width) {
      throw new ShapeError(
        `modality '${modality.name}' holds ${modality.data.length} values; ` +
          `${rows} samples x width ${modality.width} needs ${rows * modality.width}`,
      );
    }
  }

  for (let i = 0; i < rows; i++) {
    if (set.labels[i] < 0 || set.labels[i] >= set.classNames.length) {
      throw new ShapeError(
        `label ${set.labels[i]} of sample ${i} is outside 0..${set.classNames.length - 1}`,
      );
    }
  }
}

/** The rows `ids` of one modality's features, as a new row-major [ids.length, width] array. */
export function gatherRows(modality: ModalityFeatures, ids: Int32Array): Float32Array {
  const width = modality.width;
  const rows = new Float32Array(ids.length * width);
  for (let row = 0; row < ids.length; row++) {
    const start = ids[row] * width;
    rows.set(modality.data.subarray(start, start + width), row * width);
  }
  return rows;
}

/** Sample indices of one split, in dataset order. */
export function splitIndices(set: FeatureSet, split: SplitName): Int32Array {
  const indices: number[] = [];
  set.splits.forEach((name, index) => {
    if (name === split) indices.push(index);
  });
  return Int32Array.from(indices);
}

/** Keeps only the named modalities, in the order given. */
export function selectModalities(set: FeatureSet, names: string[]): FeatureSet {
  const modalities = names.map((name) => {
    const found = set.modalities.find((modality) => modality.name === name);
    if (!found) {
      const known = set.modalities.map((modality) => modality.name).join(', ');
      throw new ShapeError(`modality '${name}' is not in the features (have: ${known})`);
    }
    return found;
  });
  return { ...set, modalities };
}
