import * as fs from 'fs';
import * as path from 'path';
import { HeadSnapshot } from '../model/fusion-head';
import { writeFileAtomic } from '../util/atomic';
import { ConfigError, InputError, ShapeError } from '../util/errors';
import { componentLogger } from '../util/logger';
import {
  HEAD_ONNX_FORMAT,
  HeadSchema,
  LOGITS_OUTPUT,
  PROBABILITIES_OUTPUT,
  SCHEMA_METADATA_KEY,
  featureInputName,
  schemaProblem,
  unimodalOutputName,
} from './head-schema';
import { OnnxGraphBuilder } from './onnx-builder';

/**
 * Exports a trained fusion head's inference path to ONNX, so it runs next to the frozen
 * encoders without tf.js. The graph computes, for every modality m,
 *   h_m = relu(f_m A_m + a_m),  z_m = h_m C_m + c_m,  q_m = h_m F_m
 * and the fused logits z_f = sum_m w_m q_m + b (eq. 13) with the fixed inference weights w,
 * as FusionHead.predictLogits does, plus their softmax. In a 'weighted-sum' head all
 * modalities share one F, stored once.
 */

export interface ExportHeadOptions {
  /** The trained head's weights (FusionHead.snapshot() or loadSnapshot()). */
  snapshot: HeadSnapshot;
  /** Where the .onnx file goes; written atomically, folders created. */
  outputPath: string;
  /**
   * Extra metadata_props, such as run id, method and a training config summary: strings are
   * stored as they are, other values as JSON, undefined values are skipped. Default none.
   */
  metadata?: Record<string, unknown>;
  /** The file the snapshot came from (a checkpoint), named in errors about it. Default none. */
  source?: string;
}

export interface ExportHeadResult {
  outputPath: string;
  /** Size of the written file. */
  byteLength: number;
  /** The 'dyncim.schema' metadata written into the file. */
  schema: HeadSchema;
}

const log = componentLogger('export');

type SnapshotModality = HeadSnapshot['modalities'][number];

/** Throws an InputError about the snapshot, naming its source file when there is one. */
function reject(message: string, source: string | undefined): never {
  throw new InputError(`snapshot ${message}`, source);
}

function expectLength(
  values: Float32Array,
  expected: number,
  field: string,
  source: string | undefined,
): void {
  if (!(values instanceof Float32Array)) reject(`field '${field}' is not a Float32Array`, source);
  if (values.length !== expected) {
    const message = `snapshot field '${field}' holds ${values.length} values, expected ${expected}`;
    throw new ShapeError(source ? `${source}: ${message}` : message);
  }
}

function expectFinite(values: Float32Array, field: string, source: string | undefined): void {
  const index = values.findIndex((value) => !Number.isFinite(value));
  if (index >= 0) reject(`field '${field}' holds ${values[index]} at index ${index}`, source);
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0;
}

function firstDuplicate(names: string[]): string | undefined {
  return names.find((name, index) => names.indexOf(name) !== index);
}

/**
 * Checks the snapshot's kind, names and widths: what the graph's node and value names and the
 * 'dyncim.schema' metadata are built from, so that a bad snapshot is refused as bad input
 * instead of surfacing as an ONNX naming error.
 */
function validateStructure(snapshot: HeadSnapshot, source: string | undefined): void {
  if (snapshot.kind !== 'weighted-sum' && snapshot.kind !== 'concat') {
    reject(`kind is ${JSON.stringify(snapshot.kind)}, expected 'weighted-sum' or 'concat'`, source);
  }
  const classNames: unknown = snapshot.classNames;
  if (!Array.isArray(classNames) || classNames.length < 2) {
    reject('classNames must name at least 2 classes', source);
  }
  classNames.forEach((name, index) => {
    if (typeof name !== 'string' || name === '') {
      reject(
        `classNames[${index}] is ${JSON.stringify(name)}, expected a non-empty string`,
        source,
      );
    }
  });
  const duplicateClass = firstDuplicate(classNames as string[]);
  if (duplicateClass !== undefined) {
    reject(`classNames names class '${duplicateClass}' twice`, source);
  }
  if (!isPositiveInteger(snapshot.hiddenWidth)) {
    reject(`hiddenWidth ${JSON.stringify(snapshot.hiddenWidth)} is not a positive integer`, source);
  }

  const modalities: unknown = snapshot.modalities;
  if (!Array.isArray(modalities) || modalities.length === 0) reject('has no modalities', source);
  modalities.forEach((entry: Partial<SnapshotModality> | null, index) => {
    const where = `modalities[${index}]`;
    if (typeof entry !== 'object' || entry === null) reject(`${where} is not an object`, source);
    if (typeof entry.name !== 'string' || entry.name === '') {
      reject(`${where}.name is ${JSON.stringify(entry.name)}, expected a non-empty string`, source);
    }
    if (!isPositiveInteger(entry.featureWidth)) {
      const found = JSON.stringify(entry.featureWidth);
      reject(`${where}.featureWidth is ${found}, expected a positive integer`, source);
    }
    const sha: unknown = entry.encoderSha256;
    if (sha !== undefined && sha !== null && typeof sha !== 'string') {
      reject(`${where}.encoderSha256 is ${JSON.stringify(sha)}, expected a string`, source);
    }
  });
  const duplicateModality = firstDuplicate(modalities.map((entry) => entry.name));
  if (duplicateModality !== undefined) {
    reject(`names modality '${duplicateModality}' twice`, source);
  }
}

/** Checks every array of a snapshot against its declared widths before anything is built. */
function validateSnapshot(snapshot: HeadSnapshot, source: string | undefined): void {
  validateStructure(snapshot, source);
  const width = snapshot.hiddenWidth;
  const classes = snapshot.classNames.length;

  for (const modality of snapshot.modalities) {
    const prefix = `modalities['${modality.name}']`;
    const arrays: Array<[Float32Array, number, string]> = [
      [modality.adapterWeight, modality.featureWidth * width, 'adapterWeight'],
      [modality.adapterBias, width, 'adapterBias'],
      [modality.classifierWeight, width * classes, 'classifierWeight'],
      [modality.classifierBias, classes, 'classifierBias'],
      [modality.fusionWeight, width * classes, 'fusionWeight'],
    ];
    for (const [values, expected, field] of arrays) {
      expectLength(values, expected, `${prefix}.${field}`, source);
      expectFinite(values, `${prefix}.${field}`, source);
    }
  }

  expectLength(snapshot.fusionBias, classes, 'fusionBias', source);
  expectFinite(snapshot.fusionBias, 'fusionBias', source);
  expectLength(
    snapshot.inferenceModalityWeights,
    snapshot.modalities.length,
    'inferenceModalityWeights',
    source,
  );
  expectFinite(snapshot.inferenceModalityWeights, 'inferenceModalityWeights', source);
  if (snapshot.kind === 'weighted-sum') expectSharedFusionWeight(snapshot, source);

  // the reader (ExportedHead) checks this metadata: never write a file it would refuse
  const problem = schemaProblem(headSchemaFor(snapshot));
  if (problem) reject(`gives invalid '${SCHEMA_METADATA_KEY}' metadata: ${problem}`, source);
}

/** A 'weighted-sum' head has one F, which the export stores once: every copy must agree. */
function expectSharedFusionWeight(snapshot: HeadSnapshot, source: string | undefined): void {
  const [first, ...others] = snapshot.modalities;
  for (const modality of others) {
    const differs = modality.fusionWeight.some((value, i) => value !== first.fusionWeight[i]);
    if (differs) {
      throw new InputError(
        `a 'weighted-sum' head shares one fusion weight, but modalities '${first.name}' and ` +
          `'${modality.name}' hold different fusionWeight values`,
        source,
      );
    }
  }
}

/** The 'dyncim.schema' metadata for a snapshot. */
export function headSchemaFor(snapshot: HeadSnapshot): HeadSchema {
  return {
    format: HEAD_ONNX_FORMAT,
    modalities: snapshot.modalities.map((modality) => ({
      name: modality.name,
      input: featureInputName(modality.name),
      unimodalOutput: unimodalOutputName(modality.name),
      featureWidth: modality.featureWidth,
      encoderSha256: modality.encoderSha256 ?? null,
    })),
    classNames: snapshot.classNames.slice(),
    hiddenWidth: snapshot.hiddenWidth,
    kind: snapshot.kind,
    inferenceModalityWeights: Array.from(snapshot.inferenceModalityWeights),
  };
}

/**
 * Adds one modality's adapter and unimodal classifier; returns the name of its weighted
 * fusion contribution w_m * h_m F_m.
 */
function addModalityPath(
  builder: OnnxGraphBuilder,
  snapshot: HeadSnapshot,
  index: number,
  fusionWeightName: string,
): string {
  const modality = snapshot.modalities[index];
  const width = snapshot.hiddenWidth;
  const classes = snapshot.classNames.length;
  const scope = `modality/${modality.name}`;
  const input = featureInputName(modality.name);

  builder.addInput({ name: input, dims: ['batch', modality.featureWidth] });
  const adapterWeight = builder.addInitializer({
    name: `${scope}/adapter/weight`,
    dims: [modality.featureWidth, width],
    values: modality.adapterWeight,
  });
  const adapterBias = builder.addInitializer({
    name: `${scope}/adapter/bias`,
    dims: [width],
    values: modality.adapterBias,
  });

  const projected = builder.addNode({
    opType: 'MatMul',
    inputs: [input, adapterWeight],
    outputs: [`${scope}/adapter/projected`],
  });
  const shifted = builder.addNode({
    opType: 'Add',
    inputs: [projected, adapterBias],
    outputs: [`${scope}/adapter/shifted`],
  });
  const hidden = builder.addNode({
    opType: 'Relu',
    inputs: [shifted],
    outputs: [`${scope}/hidden`],
  });

  addUnimodalClassifier(builder, snapshot, index, hidden);

  if (snapshot.kind === 'concat') {
    builder.addInitializer({
      name: fusionWeightName,
      dims: [width, classes],
      values: modality.fusionWeight,
    });
  }
  const contribution = builder.addNode({
    opType: 'MatMul',
    inputs: [hidden, fusionWeightName],
    outputs: [`${scope}/fusion/contribution`],
  });
  const modalityWeight = builder.addInitializer({
    name: `${scope}/fusion/modality_weight`,
    dims: [],
    values: Float32Array.of(snapshot.inferenceModalityWeights[index]),
  });
  return builder.addNode({
    opType: 'Mul',
    inputs: [contribution, modalityWeight],
    outputs: [`${scope}/fusion/weighted_contribution`],
  });
}

/** z_m = h_m C_m + c_m, exposed as the graph output logits_<modality>. */
function addUnimodalClassifier(
  builder: OnnxGraphBuilder,
  snapshot: HeadSnapshot,
  index: number,
  hidden: string,
): void {
  const modality = snapshot.modalities[index];
  const classes = snapshot.classNames.length;
  const scope = `modality/${modality.name}`;

  const weight = builder.addInitializer({
    name: `${scope}/classifier/weight`,
    dims: [snapshot.hiddenWidth, classes],
    values: modality.classifierWeight,
  });
  const bias = builder.addInitializer({
    name: `${scope}/classifier/bias`,
    dims: [classes],
    values: modality.classifierBias,
  });

  const product = builder.addNode({
    opType: 'MatMul',
    inputs: [hidden, weight],
    outputs: [`${scope}/classifier/product`],
  });
  const output = unimodalOutputName(modality.name);
  builder.addNode({ opType: 'Add', inputs: [product, bias], outputs: [output] });
  builder.addOutput({ name: output, dims: ['batch', classes] });
}

/** Builds the ONNX model bytes for a snapshot; `exportHead` writes them to a file. */
export function buildHeadModel(options: Omit<ExportHeadOptions, 'outputPath'>): Uint8Array {
  const { snapshot } = options;
  validateSnapshot(snapshot, options.source);
  const classes = snapshot.classNames.length;
  const builder = new OnnxGraphBuilder({
    graphName: 'dyncim_fusion_head',
    docString: `dyncim ${snapshot.kind} fusion head over ${snapshot.modalities.length} modalities`,
  });

  // the fused outputs come first so that tools listing outputs show them first
  builder.addOutput({ name: LOGITS_OUTPUT, dims: ['batch', classes] });
  builder.addOutput({ name: PROBABILITIES_OUTPUT, dims: ['batch', classes] });

  if (snapshot.kind === 'weighted-sum') {
    builder.addInitializer({
      name: 'fusion/weight',
      dims: [snapshot.hiddenWidth, classes],
      values: snapshot.modalities[0].fusionWeight,
    });
  }
  const contributions = snapshot.modalities.map((modality, index) => {
    const fusionWeight =
      snapshot.kind === 'weighted-sum'
        ? 'fusion/weight'
        : `modality/${modality.name}/fusion/weight`;
    return addModalityPath(builder, snapshot, index, fusionWeight);
  });

  addFusedOutputs(builder, snapshot, contributions);
  addMetadata(builder, snapshot, options.metadata ?? {});
  return builder.encode();
}

/** Eq. 13: logits = sum_m w_m q_m + b, then probabilities = softmax over classes. */
function addFusedOutputs(
  builder: OnnxGraphBuilder,
  snapshot: HeadSnapshot,
  contributions: string[],
): void {
  const classes = snapshot.classNames.length;
  const fusionBias = builder.addInitializer({
    name: 'fusion/bias',
    dims: [classes],
    values: snapshot.fusionBias,
  });

  const total = builder.addNode({
    opType: 'Sum',
    inputs: contributions,
    outputs: ['fusion/total'],
  });
  builder.addNode({ opType: 'Add', inputs: [total, fusionBias], outputs: [LOGITS_OUTPUT] });
  builder.addNode({
    opType: 'Softmax',
    inputs: [LOGITS_OUTPUT],
    outputs: [PROBABILITIES_OUTPUT],
    attributes: { axis: { int: -1 } },
  });
}

function addMetadata(
  builder: OnnxGraphBuilder,
  snapshot: HeadSnapshot,
  extra: Record<string, unknown>,
): void {
  builder.setMetadata(SCHEMA_METADATA_KEY, JSON.stringify(headSchemaFor(snapshot)));

  for (const [key, value] of Object.entries(extra)) {
    if (key === SCHEMA_METADATA_KEY) {
      throw new ConfigError(
        `metadata key '${SCHEMA_METADATA_KEY}' is reserved for the head schema`,
      );
    }
    if (value === undefined) continue;
    builder.setMetadata(key, typeof value === 'string' ? value : JSON.stringify(value));
  }
}

/**
 * Node's errors from file system calls carry a code such as 'EACCES'. (No instanceof: under
 * a test environment they may come from another realm's Error.)
 */
function isSystemError(error: unknown): error is NodeJS.ErrnoException {
  const candidate = error as Partial<NodeJS.ErrnoException> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.code === 'string' &&
    typeof candidate.syscall === 'string' &&
    typeof candidate.message === 'string'
  );
}

/** Turns a file system error about `outputPath` into an InputError naming it. */
function writeError(error: unknown, outputPath: string): unknown {
  if (!isSystemError(error)) return error;
  return new InputError(`cannot write the ONNX head (${error.message})`, outputPath);
}

/**
 * Refuses an output path that names a folder or something other than a file, and creates the
 * folder it goes in; InputErrors name the path.
 */
function prepareOutputPath(outputPath: string): void {
  if (outputPath === '') throw new ConfigError('the output path is empty');
  let existing: fs.Stats | undefined;
  try {
    existing = fs.statSync(outputPath, { throwIfNoEntry: false });
  } catch (error) {
    // ENOTDIR: a folder on the way is a file
    throw writeError(error, outputPath);
  }
  if (existing?.isDirectory()) {
    throw new InputError('is a folder; give the path of the .onnx file to write', outputPath);
  }
  if (existing && !existing.isFile()) {
    throw new InputError('exists and is not a regular file; refusing to replace it', outputPath);
  }
  try {
    fs.mkdirSync(path.dirname(outputPath), { recursive: true });
  } catch (error) {
    throw writeError(error, outputPath);
  }
}

/** A new file name next to `target`, hidden, unique to this process and call. */
function temporarySibling(target: string): string {
  const suffix = `${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2, 8)}`;
  return path.join(path.dirname(target), `.${path.basename(target)}.tmp-${suffix}`);
}

/** Validates the snapshot and output path and builds the bytes; writes nothing. */
function prepareExport(options: ExportHeadOptions): Uint8Array {
  const { snapshot, outputPath } = options;
  const bytes = buildHeadModel(options);
  prepareOutputPath(outputPath);
  log.info(
    { outputPath, kind: snapshot.kind, modalities: snapshot.modalities.map((m) => m.name) },
    'exporting fusion head to ONNX',
  );
  return bytes;
}

/**
 * Writes the head's ONNX model to `outputPath` atomically. Everything is checked before
 * anything is written; on any error an existing file at `outputPath` is left as it was.
 */
export function exportHead(options: ExportHeadOptions): ExportHeadResult {
  const bytes = prepareExport(options);
  try {
    writeFileAtomic(options.outputPath, bytes);
  } catch (error) {
    throw writeError(error, options.outputPath);
  }

  log.info({ outputPath: options.outputPath, bytes: bytes.length }, 'fusion head exported');
  return {
    outputPath: options.outputPath,
    byteLength: bytes.length,
    schema: headSchemaFor(options.snapshot),
  };
}

/**
 * Like exportHead, but the model first goes to a temporary file next to `outputPath`, which
 * `check` examines (for example by running it). Only when `check` resolves does the file
 * replace `outputPath`; when it throws, the temporary file is removed and an existing file at
 * `outputPath` is left byte for byte as it was.
 */
export async function exportHeadChecked<T>(
  options: ExportHeadOptions,
  check: (temporaryPath: string) => Promise<T>,
): Promise<{ result: ExportHeadResult; checked: T }> {
  const { outputPath } = options;
  const bytes = prepareExport(options);
  const temporary = temporarySibling(outputPath);

  let checked: T;
  try {
    try {
      fs.writeFileSync(temporary, bytes, { flag: 'wx' });
    } catch (error) {
      throw writeError(error, outputPath);
    }
    checked = await check(temporary);
    try {
      fs.renameSync(temporary, outputPath);
    } catch (error) {
      throw writeError(error, outputPath);
    }
  } catch (error) {
    fs.rmSync(temporary, { force: true });
    throw error;
  }

  log.info({ outputPath, bytes: bytes.length }, 'fusion head exported and checked');
  const result = { outputPath, byteLength: bytes.length, schema: headSchemaFor(options.snapshot) };
  return { result, checked };
}
