import * as fs from 'fs';
import * as path from 'path';
import { InputError, ShapeError } from '../util/errors';
import { readNpy } from '../util/npy';
import { writeJsonAtomic } from '../util/atomic';

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

interface ManifestSample {
  label: number;
  split: SplitName;
}

function readJson(file: string): any {
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

function loadModality(entry: FeatureIndex['modalities'][number], indexFile: string, rows: number) {
  const file = path.resolve(path.dirname(indexFile), entry.file);
  const array = readNpy(file);

  if (array.shape.length !== 2 || !(array.data instanceof Float32Array)) {
    throw new InputError(`expected a float32 [N, D] array, got shape [${array.shape}]`, file);
  }
  if (array.shape[0] !== rows) {
    throw new InputError(`holds ${array.shape[0]} rows but the dataset has ${rows} samples`, file);
  }
  if (entry.shape && array.shape[1] !== entry.shape[1]) {
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
  const index = readJson(indexFile) as FeatureIndex;
  if (index.format !== 'dyncim-features/1') {
    throw new InputError(
      `not a dyncim feature index (format ${JSON.stringify(index.format)})`,
      indexFile,
    );
  }

  const manifestFile = path.join(
    path.resolve(path.dirname(indexFile), index.datasetDir),
    'dataset.json',
  );
  const manifest = readJson(manifestFile);
  const samples: ManifestSample[] = manifest.samples;
  const classNames: string[] = manifest.classes;
  const labels = Int32Array.from(samples.map((sample) => sample.label));
  const splits = samples.map((sample) => sample.split);

  const modalities = index.modalities.map((entry) =>
    loadModality(entry, indexFile, samples.length),
  );
  const featureSet = { classNames, labels, splits, modalities };
  validateFeatureSet(featureSet);
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
