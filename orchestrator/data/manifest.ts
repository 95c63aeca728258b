import * as fs from 'fs';
import * as path from 'path';
import { InputError } from '../util/errors';
import { NpyArray, readNpy } from '../util/npy';
import { ImageCorruptionRecord } from './mnist-source';

/**
 * The dataset folder's description (`dataset.json`) and the reader that checks a whole folder
 * before anything trains on it. Layout (docs/architecture.md): dataset.json, one
 * `<modality>.npy` float32 [N, C, H, W] per modality, labels.npy int32 [N]; row i of every
 * array is sample i of `samples`.
 */

export const DATASET_FORMAT = 'dyncim-dataset/1';
export const MANIFEST_FILE = 'dataset.json';
export const LABELS_FILE = 'labels.npy';

export type DatasetSplit = 'train' | 'val' | 'test';
export const DATASET_SPLITS: readonly DatasetSplit[] = ['train', 'val', 'test'];

export interface ModalityEntry {
  /** 'audio' or 'visual'; the array is `<name>.npy`. */
  name: string;
  /** [C, H, W] of one sample. */
  inputShape: number[];
  /** Version of the preprocessing that produced the array, e.g. 'audio-logmel-v1'. */
  preprocessing: string;
  /** The preprocessing's full settings, for people reading the file. */
  preprocessingSettings?: Record<string, unknown>;
}

export interface DatasetSample {
  /** Row in every array; equals the sample's position in `samples`. */
  index: number;
  /** Class index into `classes`. */
  label: number;
  split: DatasetSplit;
  /** Who spoke: an FSDD speaker name or an espeak-ng speaker id. */
  speaker: string;
  /** Where each modality's input came from: a recording, synthesis settings, an MNIST image. */
  sources: { audio: string; visual: string };
  /** What degraded the image (severity 0: untouched). */
  imageCorruption: ImageCorruptionRecord;
}

export interface DatasetManifest {
  format: typeof DATASET_FORMAT;
  name: string;
  seed: number;
  source: 'synth' | 'fsdd';
  createdAt: string;
  classes: string[];
  modalities: ModalityEntry[];
  /** The split protocol in words. */
  protocol: string;
  /** The options the dataset was built with, for reproduction. */
  build: Record<string, unknown>;
  /** Required credit for third-party data, if any. */
  attribution?: string;
  samples: DatasetSample[];
}

export interface LoadedDataset {
  dir: string;
  manifest: DatasetManifest;
  /** One array per modality, keyed by modality name, shape [N, ...inputShape]. */
  inputs: Record<string, NpyArray<Float32Array>>;
  labels: Int32Array;
  /** Sample indices of each split, ascending. */
  splits: Record<DatasetSplit, number[]>;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isShape(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((size) => Number.isInteger(size) && size > 0);
}

function checkModalities(value: unknown, file: string): void {
  if (!Array.isArray(value) || value.length === 0) {
    throw new InputError('"modalities" must be a non-empty list', file);
  }

  value.forEach((entry, i) => {
    if (!isRecord(entry) || typeof entry.name !== 'string' || !/^[a-z0-9_-]+$/i.test(entry.name)) {
      throw new InputError(`modalities[${i}].name must be a plain name like "audio"`, file);
    }
    if (!isShape(entry.inputShape)) {
      throw new InputError(
        `modalities[${i}].inputShape must be positive integers, e.g. [1, 64, 64]`,
        file,
      );
    }
    if (typeof entry.preprocessing !== 'string') {
      throw new InputError(`modalities[${i}].preprocessing must be a version string`, file);
    }
  });
}

function checkSample(sample: unknown, i: number, classCount: number, file: string): void {
  const where = `samples[${i}]`;
  if (!isRecord(sample)) throw new InputError(`${where} must be an object`, file);
  if (sample.index !== i) {
    throw new InputError(`${where}.index is ${JSON.stringify(sample.index)}, expected ${i}`, file);
  }

  const label = sample.label;
  if (!Number.isInteger(label) || (label as number) < 0 || (label as number) >= classCount) {
    const expected = `an integer in [0, ${classCount})`;
    throw new InputError(`${where}.label is ${JSON.stringify(label)}, expected ${expected}`, file);
  }
  if (!DATASET_SPLITS.includes(sample.split as DatasetSplit)) {
    const received = JSON.stringify(sample.split);
    throw new InputError(`${where}.split is ${received}, expected train, val or test`, file);
  }
  if (!isRecord(sample.sources)) throw new InputError(`${where}.sources must be an object`, file);
}

/** Checks a parsed dataset.json; `file` names it in errors. */
export function validateManifest(value: unknown, file: string): DatasetManifest {
  if (!isRecord(value)) throw new InputError('expected a JSON object', file);
  if (value.format !== DATASET_FORMAT) {
    const received = JSON.stringify(value.format);
    throw new InputError(`"format" is ${received}, expected "${DATASET_FORMAT}"`, file);
  }

  const classes = value.classes;
  if (
    !Array.isArray(classes) ||
    classes.length < 2 ||
    !classes.every((c) => typeof c === 'string')
  ) {
    throw new InputError('"classes" must list at least two class names', file);
  }
  checkModalities(value.modalities, file);

  if (!Array.isArray(value.samples) || value.samples.length === 0) {
    throw new InputError('"samples" must be a non-empty list', file);
  }
  value.samples.forEach((sample, i) => checkSample(sample, i, classes.length, file));

  return value as unknown as DatasetManifest;
}

/** Reads and checks a dataset.json. */
export function readManifest(file: string): DatasetManifest {
  if (!fs.existsSync(file)) throw new InputError('dataset manifest not found', file);

  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new InputError(`not valid JSON (${(error as Error).message})`, file);
  }

  return validateManifest(parsed, file);
}

function readInputs(
  dir: string,
  manifest: DatasetManifest,
): Record<string, NpyArray<Float32Array>> {
  const count = manifest.samples.length;
  const inputs: Record<string, NpyArray<Float32Array>> = {};

  for (const modality of manifest.modalities) {
    const file = path.join(dir, `${modality.name}.npy`);
    const array = readNpy(file);
    const expected = [count, ...modality.inputShape];
    if (!(array.data instanceof Float32Array)) {
      throw new InputError(`expected float32 inputs, found ${array.data.constructor.name}`, file);
    }
    if (array.shape.join(',') !== expected.join(',')) {
      const detail = `shape [${array.shape}], expected [${expected}] from ${MANIFEST_FILE}`;
      throw new InputError(detail, file);
    }
    checkFinite(array.data, file);
    inputs[modality.name] = { data: array.data, shape: array.shape };
  }

  return inputs;
}

function checkFinite(values: Float32Array, file: string): void {
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    // written without Number.isFinite: a global lookup per value is slow under jest's vm
    if (value !== value || value === Infinity || value === -Infinity) {
      throw new InputError(`value ${i} is ${value}, expected a finite number`, file);
    }
  }
}

function readLabels(dir: string, manifest: DatasetManifest): Int32Array {
  const file = path.join(dir, LABELS_FILE);
  const array = readNpy(file);
  const count = manifest.samples.length;

  if (!(array.data instanceof Int32Array) || array.shape.join(',') !== String(count)) {
    const found = `${array.data.constructor.name} [${array.shape}]`;
    throw new InputError(`expected int32 labels of shape [${count}], found ${found}`, file);
  }

  const labels = array.data;
  manifest.samples.forEach((sample, i) => {
    if (labels[i] !== sample.label) {
      const detail = `label ${i} is ${labels[i]}, but ${MANIFEST_FILE} says ${sample.label}`;
      throw new InputError(detail, file);
    }
  });
  return labels;
}

/**
 * Reads a dataset folder and checks it whole: the manifest, every modality array's dtype,
 * shape and finiteness against the manifest, and the labels against the samples. Any mismatch
 * is an InputError naming the file at fault.
 */
export function loadDataset(dir: string): LoadedDataset {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new InputError('dataset folder not found', dir);
  }

  const manifest = readManifest(path.join(dir, MANIFEST_FILE));
  const inputs = readInputs(dir, manifest);
  const labels = readLabels(dir, manifest);

  const splits: Record<DatasetSplit, number[]> = { train: [], val: [], test: [] };
  manifest.samples.forEach((sample) => splits[sample.split].push(sample.index));

  return { dir, manifest, inputs, labels, splits };
}
