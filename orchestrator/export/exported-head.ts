import * as fs from 'fs';
import * as ort from 'onnxruntime-node';
import { createSession, Device, Provider } from '../encoders/execution-provider';
import { ConfigError, InputError, ShapeError } from '../util/errors';
import { componentLogger } from '../util/logger';
import {
  HeadSchema,
  LOGITS_OUTPUT,
  PROBABILITIES_OUTPUT,
  SCHEMA_METADATA_KEY,
  parseHeadSchema,
} from './head-schema';
import { decodeModel } from './onnx-proto';

/**
 * Runs a fusion head exported by `exportHead` with ONNX Runtime. onnxruntime-node exposes a
 * session's input and output shapes but not the model's metadata_props, so the file is
 * decoded once with the toolkit's own ONNX schema to read 'dyncim.schema', and the same bytes
 * are handed to ONNX Runtime.
 */

export interface ExportedHeadOptions {
  /** The .onnx file written by exportHead. */
  modelPath: string;
  /**
   * 'cpu' (default: a head is a few small matrix products, where a GPU gains nothing),
   * 'cuda' (fail if it cannot load) or 'auto' (CUDA when it loads).
   */
  device?: Device;
}

export interface ExportedHeadOutputs {
  batchSize: number;
  numClasses: number;
  /** Fused logits, row-major [batchSize, numClasses]. */
  logits: Float32Array;
  /** Softmax of the fused logits, row-major [batchSize, numClasses]. */
  probabilities: Float32Array;
  /** Per modality name, that modality's unimodal logits [batchSize, numClasses]. */
  unimodalLogits: Record<string, Float32Array>;
}

const log = componentLogger('exported-head');

function readModelFile(modelPath: string): Uint8Array {
  if (!fs.existsSync(modelPath)) throw new InputError('ONNX head file not found', modelPath);
  if (!fs.statSync(modelPath).isFile()) throw new InputError('not a file', modelPath);
  return fs.readFileSync(modelPath);
}

/** Reads 'dyncim.schema' from the file's metadata_props, with errors that name the file. */
function readHeadSchema(
  bytes: Uint8Array,
  modelPath: string,
): {
  schema: HeadSchema;
  metadata: Record<string, string>;
} {
  let decoded: ReturnType<typeof decodeModel>;
  try {
    decoded = decodeModel(bytes);
  } catch (error) {
    throw new InputError(
      `not an ONNX model: protobuf decoding failed (${(error as Error).message})`,
      modelPath,
    );
  }

  const text = decoded.metadata[SCHEMA_METADATA_KEY];
  if (text === undefined) {
    const producer = decoded.producerName ? `producer '${decoded.producerName}'` : 'no producer';
    throw new InputError(
      `not a dyncim head export: the model (${producer}) has no '${SCHEMA_METADATA_KEY}' ` +
        'metadata; export heads with `dyncim export`',
      modelPath,
    );
  }
  return { schema: parseHeadSchema(text, modelPath), metadata: decoded.metadata };
}

/** Checks that the graph really has the inputs and outputs its schema promises. */
function checkGraphMatchesSchema(
  session: ort.InferenceSession,
  schema: HeadSchema,
  modelPath: string,
): void {
  const expectedInputs = schema.modalities.map((modality) => modality.input);
  const expectedOutputs = [
    LOGITS_OUTPUT,
    PROBABILITIES_OUTPUT,
    ...schema.modalities.map((modality) => modality.unimodalOutput),
  ];

  const missingInputs = expectedInputs.filter((name) => !session.inputNames.includes(name));
  const missingOutputs = expectedOutputs.filter((name) => !session.outputNames.includes(name));
  if (missingInputs.length > 0 || missingOutputs.length > 0) {
    throw new InputError(
      `the graph does not match its '${SCHEMA_METADATA_KEY}' metadata: missing ` +
        `inputs [${missingInputs.join(', ')}], outputs [${missingOutputs.join(', ')}]; ` +
        `the graph has inputs [${session.inputNames.join(', ')}]`,
      modelPath,
    );
  }
}

export class ExportedHead {
  /** The .onnx file. */
  readonly modelPath: string;
  /** The validated 'dyncim.schema' metadata. */
  readonly schema: HeadSchema;
  /** Every metadata_props entry of the file, including 'dyncim.schema' and caller entries. */
  readonly metadata: Record<string, string>;
  /** Where ONNX Runtime runs the head. */
  readonly provider: Provider;

  private session: ort.InferenceSession | undefined;

  private constructor(
    modelPath: string,
    loaded: { schema: HeadSchema; metadata: Record<string, string> },
    created: { session: ort.InferenceSession; provider: Provider },
  ) {
    this.modelPath = modelPath;
    this.schema = loaded.schema;
    this.metadata = loaded.metadata;
    this.session = created.session;
    this.provider = created.provider;
  }

  /** Loads and validates an exported head; InputError naming the file when it is not one. */
  static async create(options: ExportedHeadOptions): Promise<ExportedHead> {
    const { modelPath } = options;
    const bytes = readModelFile(modelPath);
    const loaded = readHeadSchema(bytes, modelPath);

    const created = await createSession({
      model: bytes,
      modelPath,
      device: options.device ?? 'cpu',
    });
    try {
      checkGraphMatchesSchema(created.session, loaded.schema, modelPath);
    } catch (error) {
      await created.session.release();
      throw error;
    }

    log.info(
      {
        modelPath,
        provider: created.provider,
        kind: loaded.schema.kind,
        modalities: loaded.schema.modalities.map((modality) => modality.name),
      },
      'exported head loaded',
    );
    return new ExportedHead(modelPath, loaded, created);
  }

  get classNames(): string[] {
    return this.schema.classNames;
  }

  get numClasses(): number {
    return this.schema.classNames.length;
  }

  get modalityNames(): string[] {
    return this.schema.modalities.map((modality) => modality.name);
  }

  /**
   * Runs the head on `batchSize` rows. `features` maps every modality name to its row-major
   * [batchSize, featureWidth] values; all of them are checked before anything runs, with
   * errors that start with the head's file.
   */
  async run(
    features: Record<string, Float32Array>,
    batchSize: number,
  ): Promise<ExportedHeadOutputs> {
    const session = this.openSession();
    this.validateFeatures(features, batchSize);

    const feeds: Record<string, ort.Tensor> = {};
    for (const modality of this.schema.modalities) {
      const shape = [batchSize, modality.featureWidth];
      feeds[modality.input] = new ort.Tensor('float32', features[modality.name], shape);
    }
    const results = await session.run(feeds);

    const unimodalLogits: Record<string, Float32Array> = {};
    for (const modality of this.schema.modalities) {
      unimodalLogits[modality.name] = results[modality.unimodalOutput].data as Float32Array;
    }
    return {
      batchSize,
      numClasses: this.numClasses,
      logits: results[LOGITS_OUTPUT].data as Float32Array,
      probabilities: results[PROBABILITIES_OUTPUT].data as Float32Array,
      unimodalLogits,
    };
  }

  /** Releases the ONNX Runtime session; later calls to run fail. */
  async dispose(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    if (session) await session.release();
  }

  private openSession(): ort.InferenceSession {
    if (!this.session) {
      throw new ConfigError(`the exported head ${this.modelPath} was disposed; create it again`);
    }
    return this.session;
  }

  /** Names, sizes and values of every modality's features, checked before running. */
  private validateFeatures(features: Record<string, Float32Array>, batchSize: number): void {
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new ConfigError(
        `${this.modelPath}: batchSize must be a positive integer, received ${batchSize}`,
      );
    }

    const expected = this.schema.modalities.map((m) => `'${m.name}' (width ${m.featureWidth})`);
    const unknown = Object.keys(features).filter((name) => !this.modalityNames.includes(name));
    if (unknown.length > 0) {
      throw new ShapeError(
        `${this.modelPath}: features given for unknown modalities ` +
          `${unknown.map((n) => `'${n}'`).join(', ')}; the head takes ${expected.join(', ')}`,
      );
    }

    for (const modality of this.schema.modalities) {
      const values = features[modality.name];
      checkModalityFeatures(values, modality, batchSize, expected, this.modelPath);
    }
  }
}

function checkModalityFeatures(
  values: Float32Array | undefined,
  modality: { name: string; featureWidth: number },
  batchSize: number,
  expected: string[],
  modelPath: string,
): void {
  const name = modality.name;
  if (values === undefined) {
    throw new ShapeError(
      `${modelPath}: no features for modality '${name}'; the head takes ${expected.join(', ')}`,
    );
  }
  if (!(values instanceof Float32Array)) {
    throw new ShapeError(`${modelPath}: features for '${name}' must be a Float32Array`);
  }

  const needed = batchSize * modality.featureWidth;
  if (values.length !== needed) {
    const width = values.length / batchSize;
    const problem = Number.isInteger(width)
      ? `have width ${width}, the head expects ${modality.featureWidth}`
      : `hold ${values.length} values; batch size ${batchSize} x width ` +
        `${modality.featureWidth} needs ${needed}`;
    throw new ShapeError(`${modelPath}: features for '${name}' ${problem}`);
  }

  const bad = values.findIndex((value) => !Number.isFinite(value));
  if (bad >= 0) {
    const row = Math.floor(bad / modality.featureWidth);
    throw new InputError(`features for '${name}' hold ${values[bad]} in row ${row}`, modelPath);
  }
}
