import { createHash } from 'crypto';
import * as fs from 'fs';
import * as ort from 'onnxruntime-node';
import { ConfigError, InputError, ShapeError } from '../util/errors';
import { componentLogger } from '../util/logger';
import { createSession, Device, Provider } from './execution-provider';

/**
 * A frozen feature encoder run by ONNX Runtime. The contract (docs/architecture.md): exactly
 * one float input named `input` of shape [batch, C, H, W], and an output named `features` of
 * shape [batch, D]; other outputs (such as `logits`) are allowed and not computed.
 */

export const ENCODER_INPUT_NAME = 'input';
export const ENCODER_OUTPUT_NAME = 'features';

export interface OnnxEncoderOptions {
  /** Path of the .onnx file. */
  modelPath: string;
  /** 'auto' (default: CUDA when it loads, else CPU), 'cpu' or 'cuda'. */
  device?: Device;
}

function describeValues(metadata: readonly ort.InferenceSession.ValueMetadata[]): string {
  const parts = metadata.map((value) =>
    value.isTensor
      ? `${value.name} ${value.type} rank ${value.shape.length} [${value.shape.join(', ')}]`
      : `${value.name} (not a tensor)`,
  );
  return parts.length > 0 ? parts.join('; ') : 'none';
}

function describeModel(session: ort.InferenceSession): string {
  return (
    `found inputs: ${describeValues(session.inputMetadata)}; ` +
    `outputs: ${describeValues(session.outputMetadata)}`
  );
}

function fixedSize(dimension: number | string): number | undefined {
  return typeof dimension === 'number' && dimension > 0 ? dimension : undefined;
}

type TensorMetadata = ort.InferenceSession.TensorValueMetadata;

function isTensorOfRank(
  value: ort.InferenceSession.ValueMetadata | undefined,
  rank: number,
): value is TensorMetadata {
  return value !== undefined && value.isTensor && value.shape.length === rank;
}

/** Returns [C, H, W] and D, or throws an InputError saying what the model holds instead. */
function readEncoderShapes(
  session: ort.InferenceSession,
  modelPath: string,
): { inputShape: [number, number, number]; featureWidth: number } {
  const input = session.inputMetadata.length === 1 ? session.inputMetadata[0] : undefined;
  const features = session.outputMetadata.find((value) => value.name === ENCODER_OUTPUT_NAME);

  const inputFits =
    isTensorOfRank(input, 4) && input.name === ENCODER_INPUT_NAME && input.type === 'float32';
  if (!inputFits || !isTensorOfRank(features, 2)) {
    throw new InputError(
      `not an encoder: expected one float32 input '${ENCODER_INPUT_NAME}' of rank 4 ` +
        `[batch, C, H, W] and an output '${ENCODER_OUTPUT_NAME}' of rank 2 [batch, D]; ` +
        describeModel(session),
      modelPath,
    );
  }

  const [channels, height, width] = (input as TensorMetadata).shape.slice(1).map(fixedSize);
  const featureWidth = fixedSize(features.shape[1]);
  if (!channels || !height || !width || !featureWidth) {
    throw new InputError(
      `encoder sizes must be fixed numbers except the batch axis; ${describeModel(session)}`,
      modelPath,
    );
  }
  return { inputShape: [channels, height, width], featureWidth };
}

/** Index of the first NaN or infinite value, or -1. */
function firstNonFinite(values: Float32Array): number {
  const isFinite = Number.isFinite;
  for (let i = 0; i < values.length; i++) if (!isFinite(values[i])) return i;
  return -1;
}

/** A validated encoder session. Create it with `OnnxEncoder.create`, end it with `dispose`. */
export class OnnxEncoder {
  /** The model file. */
  readonly modelPath: string;
  /** One sample's shape [C, H, W]. */
  readonly inputShape: [number, number, number];
  /** D, the width of one feature row. */
  readonly featureWidth: number;
  /** sha256 of the .onnx file's bytes, hex. */
  readonly sha256: string;
  /** The execution provider the session runs on. */
  readonly provider: Provider;

  #session: ort.InferenceSession | undefined;

  private constructor(
    modelPath: string,
    session: ort.InferenceSession,
    provider: Provider,
    sha256: string,
  ) {
    const shapes = readEncoderShapes(session, modelPath);
    this.modelPath = modelPath;
    this.inputShape = shapes.inputShape;
    this.featureWidth = shapes.featureWidth;
    this.sha256 = sha256;
    this.provider = provider;
    this.#session = session;
  }

  /**
   * Loads and validates an encoder. Throws InputError when the file is missing, is not ONNX,
   * or is not an encoder; DependencyError when device 'cuda' cannot load.
   */
  static async create(options: OnnxEncoderOptions): Promise<OnnxEncoder> {
    const { modelPath } = options;
    if (!fs.existsSync(modelPath)) throw new InputError('encoder file not found', modelPath);
    if (!fs.statSync(modelPath).isFile()) throw new InputError('expected a file', modelPath);

    const bytes = fs.readFileSync(modelPath);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const { session, provider } = await createSession({
      model: bytes,
      modelPath,
      device: options.device,
    });

    try {
      const encoder = new OnnxEncoder(modelPath, session, provider, sha256);
      componentLogger('onnx-encoder').debug(
        { model: modelPath, inputShape: encoder.inputShape, featureWidth: encoder.featureWidth },
        'encoder loaded',
      );
      return encoder;
    } catch (error) {
      await session.release();
      throw error;
    }
  }

  /** Number of floats in one input sample, C * H * W. */
  get sampleSize(): number {
    return this.inputShape[0] * this.inputShape[1] * this.inputShape[2];
  }

  /**
   * Runs one batch. `inputs` holds `batchSize` samples in C order ([batchSize, C, H, W]);
   * the result holds `batchSize` feature rows ([batchSize, D]). Errors name the model file:
   * ShapeError for inputs or outputs of the wrong size, InputError for NaN or infinite inputs
   * or features.
   */
  async encode(inputs: Float32Array, batchSize: number): Promise<Float32Array> {
    const session = this.#session;
    if (!session) throw new Error(`encoder ${this.modelPath} was disposed`);
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new ConfigError(`batchSize: expected a positive integer, received ${batchSize}`);
    }
    const expected = batchSize * this.sampleSize;
    if (inputs.length !== expected) {
      throw new ShapeError(
        `${this.modelPath}: encode: ${batchSize} samples of [${this.inputShape}] need ` +
          `${expected} floats, received ${inputs.length}`,
      );
    }
    const badInput = firstNonFinite(inputs);
    if (badInput >= 0) {
      const sample = Math.floor(badInput / this.sampleSize);
      throw new InputError(
        `encode: input sample ${sample} of the batch holds ${inputs[badInput]}; ` +
          'inputs must be finite',
        this.modelPath,
      );
    }

    const feed = new ort.Tensor('float32', inputs, [batchSize, ...this.inputShape]);
    const results = await session.run({ [ENCODER_INPUT_NAME]: feed }, [ENCODER_OUTPUT_NAME]);
    const features = results[ENCODER_OUTPUT_NAME];

    const [rows, width] = features.dims;
    if (rows !== batchSize || width !== this.featureWidth || features.type !== 'float32') {
      throw new ShapeError(
        `${this.modelPath}: features came back ${features.type} [${features.dims}], ` +
          `expected float32 [${batchSize}, ${this.featureWidth}]`,
      );
    }
    // copy: the caller keeps the result, the output tensor is ONNX Runtime's
    const output = Float32Array.from(features.data as Float32Array);
    const bad = firstNonFinite(output);
    if (bad >= 0) {
      // the inputs were finite (checked above): the model itself produced it
      const [sample, column] = [Math.floor(bad / this.featureWidth), bad % this.featureWidth];
      throw new InputError(
        `encode: feature ${column} of sample ${sample} of the batch came back ` +
          `${output[bad]} from finite inputs; the model is broken`,
        this.modelPath,
      );
    }
    return output;
  }

  /** Releases the native session. Later `encode` calls throw. Safe to call twice. */
  async dispose(): Promise<void> {
    const session = this.#session;
    this.#session = undefined;
    if (session) await session.release();
  }
}
