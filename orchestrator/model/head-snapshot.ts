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

function base64ToFloats(text: string, field: string, file: string): Float32Array {
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length % 4 !== 0) throw new InputError(`field '${field}' is not float32 data`, file);
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return new Float32Array(copy.buffer);
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

/** Parses and checks the JSON form of a snapshot; `file` names the source in errors. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function snapshotFromJson(json: any, file = '<snapshot>'): HeadSnapshot {
  if (json?.format !== 'dyncim-head/1') {
    throw new InputError(`not a dyncim head (format is ${JSON.stringify(json?.format)})`, file);
  }

  for (const field of ['classNames', 'modalities'] as const) {
    if (!Array.isArray(json[field]) || json[field].length === 0) {
      throw new InputError(`field '${field}' is missing or empty`, file);
    }
  }
  if (typeof json.fusionBias !== 'string')
    throw new InputError("field 'fusionBias' is missing", file);
  const width: number = json.hiddenWidth;
  if (!Number.isInteger(width) || width < 1) {
    throw new InputError(`hiddenWidth ${JSON.stringify(width)} is not a positive integer`, file);
  }
  const classes: number = json.classNames.length;
  const modalities = json.modalities.map((modality: Record<string, unknown>) => {
    const decoded: Record<string, unknown> = { ...modality };
    for (const field of FLOAT_FIELDS) {
      decoded[field] = base64ToFloats(String(modality[field]), field, file);
    }
    const featureWidth = Number(modality.featureWidth);
    expectLength(
      decoded.adapterWeight as Float32Array,
      featureWidth * width,
      'adapterWeight',
      file,
    );
    expectLength(decoded.adapterBias as Float32Array, width, 'adapterBias', file);
    expectLength(
      decoded.classifierWeight as Float32Array,
      width * classes,
      'classifierWeight',
      file,
    );
    expectLength(decoded.classifierBias as Float32Array, classes, 'classifierBias', file);
    expectLength(decoded.fusionWeight as Float32Array, width * classes, 'fusionWeight', file);
    return decoded;
  });

  const fusionBias = base64ToFloats(json.fusionBias, 'fusionBias', file);
  expectLength(fusionBias, classes, 'fusionBias', file);
  const rawWeights: unknown[] = Array.isArray(json.inferenceModalityWeights)
    ? json.inferenceModalityWeights
    : [];
  if (rawWeights.some((value) => typeof value !== 'number' || !Number.isFinite(value))) {
    // JSON has no NaN: JSON.stringify writes a NaN weight as null
    throw new InputError("field 'inferenceModalityWeights' holds a NaN, null or non-number", file);
  }
  const inferenceModalityWeights = Float32Array.from(rawWeights as number[]);
  expectLength(inferenceModalityWeights, modalities.length, 'inferenceModalityWeights', file);

  const snapshot = { ...json, modalities, fusionBias, inferenceModalityWeights } as HeadSnapshot;
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

  let parsed: { head?: unknown };
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new InputError(`not valid JSON (${(error as Error).message})`, file);
  }
  return snapshotFromJson(parsed.head, file);
}
