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
}

export interface ExportHeadResult {
  outputPath: string;
  /** Size of the written file. */
  byteLength: number;
  /** The 'dyncim.schema' metadata written into the file. */
  schema: HeadSchema;
}

const log = componentLogger('export');

function expectLength(values: Float32Array, expected: number, field: string): void {
  if (values.length !== expected) {
    throw new ShapeError(
      `snapshot field '${field}' holds ${values.length} values, expected ${expected}`,
    );
  }
}

function expectFinite(values: Float32Array, field: string): void {
  const index = values.findIndex((value) => !Number.isFinite(value));
  if (index >= 0) {
    throw new InputError(`snapshot field '${field}' holds ${values[index]} at index ${index}`);
  }
}

/** Checks every array of a snapshot against its declared widths before anything is built. */
function validateSnapshot(snapshot: HeadSnapshot): void {
  const width = snapshot.hiddenWidth;
  const classes = snapshot.classNames.length;
  if (snapshot.modalities.length === 0) throw new ConfigError('the snapshot has no modalities');

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
      expectLength(values, expected, `${prefix}.${field}`);
      expectFinite(values, `${prefix}.${field}`);
    }
  }

  expectLength(snapshot.fusionBias, classes, 'fusionBias');
  expectFinite(snapshot.fusionBias, 'fusionBias');
  expectLength(
    snapshot.inferenceModalityWeights,
    snapshot.modalities.length,
    'inferenceModalityWeights',
  );
  expectFinite(snapshot.inferenceModalityWeights, 'inferenceModalityWeights');
  if (snapshot.kind === 'weighted-sum') expectSharedFusionWeight(snapshot);
}

/** A 'weighted-sum' head has one F, which the export stores once: every copy must agree. */
function expectSharedFusionWeight(snapshot: HeadSnapshot): void {
  const [first, ...others] = snapshot.modalities;
  for (const modality of others) {
    const differs = modality.fusionWeight.some((value, i) => value !== first.fusionWeight[i]);
    if (differs) {
      throw new InputError(
        `a 'weighted-sum' head shares one fusion weight, but modalities '${first.name}' and ` +
          `'${modality.name}' hold different fusionWeight values`,
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
  validateSnapshot(snapshot);
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

/** Writes the head's ONNX model to `outputPath` atomically. */
export function exportHead(options: ExportHeadOptions): ExportHeadResult {
  const { snapshot, outputPath } = options;
  log.info(
    { outputPath, kind: snapshot.kind, modalities: snapshot.modalities.map((m) => m.name) },
    'exporting fusion head to ONNX',
  );

  const bytes = buildHeadModel(options);
  writeFileAtomic(outputPath, bytes);

  log.info({ outputPath, bytes: bytes.length }, 'fusion head exported');
  return { outputPath, byteLength: bytes.length, schema: headSchemaFor(snapshot) };
}
