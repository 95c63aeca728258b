import * as fs from 'fs';
import { HeadSnapshot } from './fusion-head';
import { InputError } from '../util/errors';
import { writeJsonAtomic } from '../util/atomic';

/**
 * Checkpoint files for fusion heads: JSON with float32 arrays as base64, so a checkpoint is
 * one self-describing file that any language can read.
 */

const FLOAT_FIELDS = [
  'adapterWeight',
  'adapterBias',
  'classifierWeight',
  'classifierBias',
  'fusionWeight',
] as const;

function floatsToBase64(values: Float32Array): string {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64');
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function base64ToFloats(text: unknown, field: string, file: string): Float32Array {
  if (typeof text !== 'string') {
    throw new InputError(
      `field '${field}' is ${describeValue(text)}, expected base64 float32 data`,
      file,
    );
  }
  const bytes = Buffer.from(text, 'base64');
  if (!BASE64.test(text) || text.length % 4 !== 0 || bytes.length % 4 !== 0) {
    throw new InputError(`field '${field}' is not base64 float32 data`, file);
  }
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return new Float32Array(copy.buffer);
}

/** A short description of a JSON value for error messages: `"x"`, `12`, `null`, `a list`. */
function describeValue(value: unknown): string {
  if (value === undefined) return 'missing';
  if (Array.isArray(value)) return 'a list';
  if (value !== null && typeof value === 'object') return 'an object';
  const text = JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0;
}

/** The JSON form of a snapshot. */
export function snapshotToJson(snapshot: HeadSnapshot): Record<string, unknown> {
  return {
    ...snapshot,
    modalities: snapshot.modalities.map((modality) => {
      const encoded: Record<string, unknown> = { ...modality };
      for (const field of FLOAT_FIELDS) encoded[field] = floatsToBase64(modality[field]);
      return encoded;
    }),
    fusionBias: floatsToBase64(snapshot.fusionBias),
    inferenceModalityWeights: Array.from(snapshot.inferenceModalityWeights),
  };
}

function expectLength(values: Float32Array, expected: number, field: string, file: string): void {
  if (values.length !== expected) {
    throw new InputError(
      `field '${field}' holds ${values.length} values, expected ${expected}`,
      file,
    );
  }
}

/** The first name that occurs twice in `names`, or undefined. */
function firstDuplicate(names: string[]): string | undefined {
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) return name;
    seen.add(name);
  }
  return undefined;
}

/** Checks `classNames`: at least 2 names, each a non-empty string, no name twice. */
function parseClassNames(value: unknown, file: string): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new InputError("field 'classNames' is missing or empty", file);
  }
  value.forEach((name, index) => {
    if (typeof name !== 'string' || name.length === 0) {
      throw new InputError(
        `field 'classNames[${index}]' is ${describeValue(name)}, expected a non-empty string`,
        file,
      );
    }
  });
  if (value.length < 2) {
    throw new InputError("field 'classNames' names 1 class, expected at least 2", file);
  }
  const duplicate = firstDuplicate(value);
  if (duplicate !== undefined) {
    throw new InputError(`field 'classNames' names class '${duplicate}' twice`, file);
  }
  return value.slice();
}

/** Checks one entry of `modalities` and decodes its weights. */
function parseModality(
  entry: unknown,
  index: number,
  shape: { hiddenWidth: number; classes: number },
  file: string,
): HeadSnapshot['modalities'][number] {
  const where = `modalities[${index}]`;
  if (!isObject(entry)) {
    throw new InputError(`field '${where}' is ${describeValue(entry)}, expected an object`, file);
  }
  const { name, featureWidth, encoderSha256 } = entry;
  // modality names become ONNX input names and file names: plain words only
  if (typeof name !== 'string' || !/^[A-Za-z0-9_-]+$/.test(name)) {
    throw new InputError(
      `field '${where}.name' is ${describeValue(name)}, ` +
        'expected a plain name of letters, digits, _ or -',
      file,
    );
  }
  if (!isPositiveInteger(featureWidth)) {
    throw new InputError(
      `field '${where}.featureWidth' is ${describeValue(featureWidth)}, ` +
        'expected a positive integer',
      file,
    );
  }
  if (encoderSha256 !== undefined && encoderSha256 !== null && typeof encoderSha256 !== 'string') {
    throw new InputError(
      `field '${where}.encoderSha256' is ${describeValue(encoderSha256)}, expected a string`,
      file,
    );
  }

  const floats = {} as Record<(typeof FLOAT_FIELDS)[number], Float32Array>;
  for (const field of FLOAT_FIELDS) {
    floats[field] = base64ToFloats(entry[field], `${where}.${field}`, file);
  }
  const { hiddenWidth: width, classes } = shape;
  expectLength(floats.adapterWeight, featureWidth * width, `${where}.adapterWeight`, file);
  expectLength(floats.adapterBias, width, `${where}.adapterBias`, file);
  expectLength(floats.classifierWeight, width * classes, `${where}.classifierWeight`, file);
  expectLength(floats.classifierBias, classes, `${where}.classifierBias`, file);
  expectLength(floats.fusionWeight, width * classes, `${where}.fusionWeight`, file);

  return {
    name,
    featureWidth,
    ...(typeof encoderSha256 === 'string' ? { encoderSha256 } : {}),
    ...floats,
  };
}

/**
 * Parses and checks the JSON form of a snapshot; `file` names the source in errors. Every
 * problem is an InputError naming the file and the field, so that nothing malformed reaches
 * the head or the ONNX export.
 */
export function snapshotFromJson(json: unknown, file = '<snapshot>'): HeadSnapshot {
  if (!isObject(json)) {
    throw new InputError(`the head is ${describeValue(json)}, expected an object`, file);
  }
  if (json.format !== 'dyncim-head/1') {
    throw new InputError(`not a dyncim head (format is ${JSON.stringify(json.format)})`, file);
  }
  const kind = json.kind;
  if (kind !== 'weighted-sum' && kind !== 'concat') {
    throw new InputError(
      `field 'kind' is ${describeValue(kind)}, expected 'weighted-sum' or 'concat'`,
      file,
    );
  }
  const classNames = parseClassNames(json.classNames, file);
  const hiddenWidth = json.hiddenWidth;
  if (!isPositiveInteger(hiddenWidth)) {
    throw new InputError(
      `field 'hiddenWidth' is ${describeValue(hiddenWidth)}, expected a positive integer`,
      file,
    );
  }

  if (!Array.isArray(json.modalities) || json.modalities.length === 0) {
    throw new InputError("field 'modalities' is missing or empty", file);
  }
  const shape = { hiddenWidth, classes: classNames.length };
  const modalities = json.modalities.map((entry: unknown, index: number) =>
    parseModality(entry, index, shape, file),
  );
  const duplicate = firstDuplicate(modalities.map((modality) => modality.name));
  if (duplicate !== undefined) {
    throw new InputError(`field 'modalities' names modality '${duplicate}' twice`, file);
  }

  const fusionBias = base64ToFloats(json.fusionBias, 'fusionBias', file);
  expectLength(fusionBias, classNames.length, 'fusionBias', file);
  const rawWeights = json.inferenceModalityWeights;
  if (!Array.isArray(rawWeights)) {
    throw new InputError(
      `field 'inferenceModalityWeights' is ${describeValue(rawWeights)}, ` +
        'expected a list of numbers',
      file,
    );
  }
  if (rawWeights.some((value) => typeof value !== 'number' || !Number.isFinite(value))) {
    // JSON has no NaN: JSON.stringify writes a NaN weight as null
    throw new InputError("field 'inferenceModalityWeights' holds a NaN, null or non-number", file);
  }
  const inferenceModalityWeights = Float32Array.from(rawWeights as number[]);
  expectLength(inferenceModalityWeights, modalities.length, 'inferenceModalityWeights', file);

  const snapshot: HeadSnapshot = {
    format: 'dyncim-head/1',
    kind,
    classNames,
    hiddenWidth,
    modalities,
    fusionBias,
    inferenceModalityWeights,
  };
  checkFinite(snapshot, file);
  return snapshot;
}

function checkFinite(snapshot: HeadSnapshot, file: string): void {
  const arrays: Array<[string, Float32Array]> = [
    ['fusionBias', snapshot.fusionBias],
    ['inferenceModalityWeights', snapshot.inferenceModalityWeights],
  ];
  for (const modality of snapshot.modalities) {
    for (const field of FLOAT_FIELDS) arrays.push([`${modality.name}.${field}`, modality[field]]);
  }

  for (const [field, values] of arrays) {
    if (values.some((value) => !Number.isFinite(value))) {
      throw new InputError(`field '${field}' holds a NaN or infinite value`, file);
    }
  }
}

/** Writes a snapshot (plus any extra fields, such as training state) atomically. */
export function saveSnapshot(file: string, snapshot: HeadSnapshot, extra: object = {}): void {
  writeJsonAtomic(file, { ...extra, head: snapshotToJson(snapshot) });
}

/** Reads a snapshot written by saveSnapshot, with errors that name the file. */
export function loadSnapshot(file: string): HeadSnapshot {
  if (!fs.existsSync(file)) throw new InputError('checkpoint not found', file);

  if (!fs.statSync(file).isFile()) throw new InputError('not a file', file);

  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new InputError(`not valid JSON (${(error as Error).message})`, file);
  }
  if (!isObject(parsed)) {
    throw new InputError(
      `not a checkpoint: the file holds ${describeValue(parsed)}, expected an object with a ` +
        "'head' field",
      file,
    );
  }
  if (!('head' in parsed)) throw new InputError("not a checkpoint: no 'head' field", file);
  return snapshotFromJson(parsed.head, file);
}
