import { HeadKind } from '../model/fusion-head';
import { InputError } from '../util/errors';

/**
 * The contract between an exported head and whoever runs it, stored as JSON in the ONNX
 * model's metadata_props under 'dyncim.schema': which graph input takes which modality's
 * features, how wide they are, which encoder made them, and what the outputs mean.
 */

export const HEAD_ONNX_FORMAT = 'dyncim-head-onnx/1';
export const SCHEMA_METADATA_KEY = 'dyncim.schema';

/** Graph output names. */
export const LOGITS_OUTPUT = 'logits';
export const PROBABILITIES_OUTPUT = 'probabilities';

export interface ExportedModality {
  name: string;
  /** Graph input taking this modality's features, float32 [batch, featureWidth]. */
  input: string;
  /** Graph output with this modality's unimodal logits, float32 [batch, K]. */
  unimodalOutput: string;
  featureWidth: number;
  /** sha256 of the encoder whose features the head was trained on; null when unknown. */
  encoderSha256: string | null;
}

export interface HeadSchema {
  format: typeof HEAD_ONNX_FORMAT;
  modalities: ExportedModality[];
  classNames: string[];
  hiddenWidth: number;
  kind: HeadKind;
  /** The fixed modality weights w_m baked into the fused logits, one per modality. */
  inferenceModalityWeights: number[];
}

/** Name of the graph input for a modality's features. */
export function featureInputName(modality: string): string {
  return `features_${modality}`;
}

/** Name of the graph output for a modality's unimodal logits. */
export function unimodalOutputName(modality: string): string {
  return `logits_${modality}`;
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0;
}

function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

/** Returns what is wrong with one modality entry, or undefined when it is well formed. */
function modalityProblem(entry: unknown, index: number): string | undefined {
  const modality = entry as Partial<ExportedModality> | null;
  const where = `modalities[${index}]`;
  if (typeof modality !== 'object' || modality === null) return `${where} is not an object`;
  if (!isNonEmptyString(modality.name)) return `${where}.name is not a non-empty string`;
  if (!isNonEmptyString(modality.input)) return `${where}.input is not a non-empty string`;
  if (!isNonEmptyString(modality.unimodalOutput)) {
    return `${where}.unimodalOutput is not a non-empty string`;
  }
  if (!isPositiveInteger(modality.featureWidth)) {
    const found = JSON.stringify(modality.featureWidth);
    return `${where}.featureWidth is ${found}, expected a positive integer`;
  }
  const sha = modality.encoderSha256;
  if (sha !== null && typeof sha !== 'string') {
    return `${where}.encoderSha256 is ${JSON.stringify(sha)}, expected a string or null`;
  }
  return undefined;
}

/**
 * Returns what is wrong with a parsed schema, or undefined when it is well formed. The export
 * runs this on the schema it is about to write, so it never writes a file the reader refuses.
 */
export function schemaProblem(schema: Partial<HeadSchema>): string | undefined {
  if (schema.format !== HEAD_ONNX_FORMAT) {
    return `format is ${JSON.stringify(schema.format)}, expected '${HEAD_ONNX_FORMAT}'`;
  }
  if (!Array.isArray(schema.modalities) || schema.modalities.length === 0) {
    return 'modalities is not a non-empty list';
  }

  const problems = schema.modalities.map(modalityProblem).filter((problem) => problem);
  if (problems.length > 0) return problems[0];

  const names = new Set(schema.modalities.map((modality) => modality.name));
  if (names.size !== schema.modalities.length) return 'modality names are not unique';

  const classNames = schema.classNames;
  if (!Array.isArray(classNames) || classNames.length < 2 || !classNames.every(isNonEmptyString)) {
    return 'classNames is not a list of at least 2 names';
  }
  if (!isPositiveInteger(schema.hiddenWidth)) return 'hiddenWidth is not a positive integer';
  if (schema.kind !== 'weighted-sum' && schema.kind !== 'concat') {
    return `kind is ${JSON.stringify(schema.kind)}, expected 'weighted-sum' or 'concat'`;
  }

  const weights = schema.inferenceModalityWeights;
  const weightsFit =
    Array.isArray(weights) &&
    weights.length === schema.modalities.length &&
    weights.every((weight) => typeof weight === 'number' && Number.isFinite(weight));
  if (!weightsFit) {
    return `inferenceModalityWeights is not a list of ${schema.modalities.length} finite numbers`;
  }
  return undefined;
}

/**
 * Parses and checks the 'dyncim.schema' metadata text of `file`; throws an InputError naming
 * the file and the first problem found.
 */
export function parseHeadSchema(text: string, file: string): HeadSchema {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new InputError(
      `metadata '${SCHEMA_METADATA_KEY}' is not valid JSON (${(error as Error).message})`,
      file,
    );
  }

  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InputError(`metadata '${SCHEMA_METADATA_KEY}' is not a JSON object`, file);
  }

  const problem = schemaProblem(parsed as Partial<HeadSchema>);
  if (problem) throw new InputError(`metadata '${SCHEMA_METADATA_KEY}': ${problem}`, file);
  return parsed as HeadSchema;
}
