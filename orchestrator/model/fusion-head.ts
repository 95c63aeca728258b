import * as tf from '@tensorflow/tfjs';
import { ShapeError, ConfigError } from '../util/errors';
import { SeededRandom } from '../util/rng';

/**
 * Trainable fusion heads over frozen encoder features.
 *
 * Every modality m owns its parameters, kept in a group of their own:
 *   adapter     h_m = relu(f_m A_m + a_m)        features -> shared hidden width d
 *   classifier  z_m = h_m C_m + c_m              unimodal logits (auxiliary losses, eq. 1)
 *   fusion part q_m = h_m F_m                    this modality's share of the fused logits
 * and the fused logits are z_f = sum_m w_m * q_m + b (eq. 13), with per-sample modality weights
 * w (DynCIM's omega*) or w = 1 (plain fusion).
 *
 * Two kinds differ only in F_m:
 *   'weighted-sum'  one fusion classifier F shared by all modalities, so
 *                   z_f = (sum_m w_m h_m) F + b, eq. 13 applied to the adapted features;
 *   'concat'        a block F_m per modality, which equals a linear layer on [h_1, ..., h_M].
 * Either way the per-modality logits exist by construction, so methods that scale one
 * modality's gradients or logits never slice a fused weight matrix at a fixed width, and the
 * modalities' feature widths may differ.
 */

export type HeadKind = 'weighted-sum' | 'concat';

export interface ModalitySpec {
  /** Modality name, e.g. 'audio'. */
  name: string;
  /** Width of the frozen encoder's feature vector. */
  featureWidth: number;
  /** sha256 of the encoder that produced the features, recorded in exports. */
  encoderSha256?: string;
}

export interface FusionHeadOptions {
  kind: HeadKind;
  modalities: ModalitySpec[];
  classNames: string[];
  /** Width d of every adapter's output. Default 128. */
  hiddenWidth?: number;
  /** Seed for weight initialisation. Default 0. */
  seed?: number;
}

/** One modality's (or the shared fusion part's) trainable variables. */
export interface ParameterGroup {
  /** A modality name, or 'fusion' for parameters shared across modalities. */
  name: string;
  variables: tf.Variable[];
}

export interface HeadOutputs {
  /** Per modality, [B, d]. */
  hidden: tf.Tensor2D[];
  /** Per modality, [B, K]: the unimodal classifiers' logits. */
  unimodalLogits: tf.Tensor2D[];
  /** Per modality, [B, K]: h_m F_m, this modality's unweighted share of the fused logits. */
  fusionContributions: tf.Tensor2D[];
  /** [B, K]. */
  fusedLogits: tf.Tensor2D;
}

export interface ForwardOptions {
  /**
   * Modality weights: [B, M] per sample, [M] for the whole batch, or undefined for all ones.
   */
  modalityWeights?: tf.Tensor1D | tf.Tensor2D;
  /**
   * Train the unimodal classifiers as probes on stopped-gradient features, so their losses
   * measure each modality without steering the shared adapters (used by plain fusion).
   */
  detachUnimodalClassifiers?: boolean;
}

/** Plain-array copy of a head's weights: checkpoints and the ONNX export read this. */
export interface HeadSnapshot {
  format: 'dyncim-head/1';
  kind: HeadKind;
  classNames: string[];
  hiddenWidth: number;
  modalities: Array<
    ModalitySpec & {
      adapterWeight: Float32Array; // [featureWidth, d]
      adapterBias: Float32Array; // [d]
      classifierWeight: Float32Array; // [d, K]
      classifierBias: Float32Array; // [K]
      fusionWeight: Float32Array; // [d, K]; for 'weighted-sum' every modality holds the shared F
    }
  >;
  fusionBias: Float32Array; // [K]
  /** Fixed modality weights used when no per-batch weights are given (inference, export). */
  inferenceModalityWeights: Float32Array; // [M]
}

interface ModalityVariables {
  adapterWeight: tf.Variable;
  adapterBias: tf.Variable;
  classifierWeight: tf.Variable;
  classifierBias: tf.Variable;
  fusionWeight?: tf.Variable;
}

function heUniform(random: SeededRandom, fanIn: number, fanOut: number): Float32Array {
  const limit = Math.sqrt(6 / fanIn);
  const values = new Float32Array(fanIn * fanOut);
  for (let i = 0; i < values.length; i++) values[i] = random.uniform(-limit, limit);
  return values;
}

function glorotUniform(random: SeededRandom, fanIn: number, fanOut: number): Float32Array {
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  const values = new Float32Array(fanIn * fanOut);
  for (let i = 0; i < values.length; i++) values[i] = random.uniform(-limit, limit);
  return values;
}

function validateOptions(options: FusionHeadOptions): void {
  if (options.modalities.length === 0)
    throw new ConfigError('a fusion head needs at least one modality');
  if (options.classNames.length < 2) {
    throw new ConfigError(
      `classNames must name at least 2 classes, got ${options.classNames.length}`,
    );
  }
  for (const modality of options.modalities) {
    if (!Number.isInteger(modality.featureWidth) || modality.featureWidth < 1) {
      throw new ConfigError(
        `modality '${modality.name}' has featureWidth ${modality.featureWidth}; ` +
          'expected a positive integer',
      );
    }
  }
  const names = new Set(options.modalities.map((modality) => modality.name));
  if (names.size !== options.modalities.length)
    throw new ConfigError('modality names must be unique');
}

let nextHeadId = 0;

/** Identity in the forward pass, zero gradient in the backward pass (tf.js has no built-in). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const stopGradient = tf.customGrad(((x: tf.Tensor) => ({
  value: tf.clone(x),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
})) as any) as (x: tf.Tensor2D) => tf.Tensor2D;

export class FusionHead {
  readonly kind: HeadKind;
  readonly modalities: ModalitySpec[];
  readonly classNames: string[];
  readonly hiddenWidth: number;

  /** Fixed modality weights for inference: a running average kept by the trainer. */
  inferenceModalityWeights: Float32Array;

  private readonly perModality: ModalityVariables[];
  private readonly sharedFusionWeight?: tf.Variable;
  private readonly fusionBias: tf.Variable;

  private constructor(options: FusionHeadOptions, initial?: HeadSnapshot) {
    validateOptions(options);
    this.kind = options.kind;
    this.modalities = options.modalities.map((modality) => ({ ...modality }));
    this.classNames = options.classNames.slice();
    this.hiddenWidth = options.hiddenWidth ?? 128;

    // tf.js variable names are global to the engine: prefix them so several heads can coexist
    const prefix = `head${nextHeadId++}`;
    const random = new SeededRandom(options.seed ?? 0);
    const width = this.hiddenWidth;
    const classes = this.classNames.length;
    const sharedInitial =
      initial?.modalities[0].fusionWeight ?? glorotUniform(random, width, classes);

    this.perModality = this.modalities.map((modality, index) => {
      const saved = initial?.modalities[index];
      const name = modality.name;
      const variables: ModalityVariables = {
        adapterWeight: tf.variable(
          tf.tensor2d(saved?.adapterWeight ?? heUniform(random, modality.featureWidth, width), [
            modality.featureWidth,
            width,
          ]),
          true,
          `${prefix}/${name}/adapter/weight`,
        ),
        adapterBias: tf.variable(
          tf.tensor1d(saved?.adapterBias ?? new Float32Array(width)),
          true,
          `${prefix}/${name}/adapter/bias`,
        ),
        classifierWeight: tf.variable(
          tf.tensor2d(saved?.classifierWeight ?? glorotUniform(random, width, classes), [
            width,
            classes,
          ]),
          true,
          `${prefix}/${name}/classifier/weight`,
        ),
        classifierBias: tf.variable(
          tf.tensor1d(saved?.classifierBias ?? new Float32Array(classes)),
          true,
          `${prefix}/${name}/classifier/bias`,
        ),
      };
      if (this.kind === 'concat') {
        variables.fusionWeight = tf.variable(
          tf.tensor2d(saved?.fusionWeight ?? glorotUniform(random, width, classes), [
            width,
            classes,
          ]),
          true,
          `${prefix}/${name}/fusion/weight`,
        );
      }
      return variables;
    });

    if (this.kind === 'weighted-sum') {
      this.sharedFusionWeight = tf.variable(
        tf.tensor2d(sharedInitial, [width, classes]),
        true,
        `${prefix}/fusion/weight`,
      );
    }
    this.fusionBias = tf.variable(
      tf.tensor1d(initial?.fusionBias ?? new Float32Array(classes)),
      true,
      `${prefix}/fusion/bias`,
    );
    this.inferenceModalityWeights =
      initial?.inferenceModalityWeights.slice() ?? new Float32Array(this.modalities.length).fill(1);
  }

  /** A freshly initialised head. */
  static create(options: FusionHeadOptions): FusionHead {
    return new FusionHead(options);
  }

  /** A head holding a snapshot's weights. */
  static fromSnapshot(snapshot: HeadSnapshot): FusionHead {
    return new FusionHead(
      {
        kind: snapshot.kind,
        modalities: snapshot.modalities.map(({ name, featureWidth, encoderSha256 }) => ({
          name,
          featureWidth,
          encoderSha256,
        })),
        classNames: snapshot.classNames,
        hiddenWidth: snapshot.hiddenWidth,
      },
      snapshot,
    );
  }

  get numClasses(): number {
    return this.classNames.length;
  }

  /** Trainable variables grouped per modality, then the shared 'fusion' group. */
  parameterGroups(): ParameterGroup[] {
    const groups: ParameterGroup[] = this.modalities.map((modality, index) => {
      const own = this.perModality[index];
      const variables = [
        own.adapterWeight,
        own.adapterBias,
        own.classifierWeight,
        own.classifierBias,
      ];
      if (own.fusionWeight) variables.push(own.fusionWeight);
      return { name: modality.name, variables };
    });

    const shared = this.sharedFusionWeight
      ? [this.sharedFusionWeight, this.fusionBias]
      : [this.fusionBias];
    groups.push({ name: 'fusion', variables: shared });
    return groups;
  }

  /** Throws a ShapeError naming the modality when a feature tensor has the wrong shape. */
  validateFeatures(features: Array<{ shape: number[] }>): void {
    if (features.length !== this.modalities.length) {
      throw new ShapeError(
        `expected features for ${this.modalities.length} modalities ` +
          `(${this.modalities.map((m) => m.name).join(', ')}), got ${features.length}`,
      );
    }

    const batch = features[0].shape[0];
    features.forEach((feature, index) => {
      const modality = this.modalities[index];
      if (feature.shape.length !== 2 || feature.shape[1] !== modality.featureWidth) {
        throw new ShapeError(
          `features for modality '${modality.name}' have shape [${feature.shape}]; ` +
            `the head expects [batch, ${modality.featureWidth}]`,
        );
      }
      if (feature.shape[0] !== batch) {
        throw new ShapeError(
          `modality '${modality.name}' has ${feature.shape[0]} rows ` +
            `but '${this.modalities[0].name}' has ${batch}`,
        );
      }
    });
  }

  /** Runs the head. Call inside tf.tidy (or a gradient function) to free intermediates. */
  forward(features: tf.Tensor2D[], options: ForwardOptions = {}): HeadOutputs {
    this.validateFeatures(features);

    const hidden = features.map((feature, index) => {
      const own = this.perModality[index];
      return tf.relu(tf.add(tf.matMul(feature, own.adapterWeight), own.adapterBias)) as tf.Tensor2D;
    });

    const unimodalLogits = hidden.map((h, index) => {
      const own = this.perModality[index];
      const input = options.detachUnimodalClassifiers ? stopGradient(h) : h;
      return tf.add(tf.matMul(input, own.classifierWeight), own.classifierBias) as tf.Tensor2D;
    });

    const fusionContributions = hidden.map((h, index) => {
      const weight = this.perModality[index].fusionWeight ?? this.sharedFusionWeight!;
      return tf.matMul(h, weight) as tf.Tensor2D;
    });

    const fusedLogits = this.combine(fusionContributions, options.modalityWeights);
    return { hidden, unimodalLogits, fusionContributions, fusedLogits };
  }

  /** Eq. 13: fused logits = sum_m w_m * (h_m F_m) + b. */
  private combine(contributions: tf.Tensor2D[], weights?: tf.Tensor1D | tf.Tensor2D): tf.Tensor2D {
    let total: tf.Tensor2D | undefined;

    contributions.forEach((contribution, index) => {
      let weighted: tf.Tensor2D = contribution;
      if (weights && weights.rank === 2) {
        const column = tf.slice(weights as tf.Tensor2D, [0, index], [-1, 1]);
        weighted = tf.mul(contribution, column) as tf.Tensor2D;
      } else if (weights) {
        weighted = tf.mul(
          contribution,
          tf.slice(weights as tf.Tensor1D, [index], [1]),
        ) as tf.Tensor2D;
      }
      total = total ? (tf.add(total, weighted) as tf.Tensor2D) : weighted;
    });

    return tf.add(total!, this.fusionBias) as tf.Tensor2D;
  }

  /** Fused logits with the stored inference modality weights, as the exported head computes. */
  predictLogits(features: tf.Tensor2D[]): tf.Tensor2D {
    return tf.tidy(() => {
      const weights = tf.tensor1d(this.inferenceModalityWeights);
      return this.forward(features, { modalityWeights: weights }).fusedLogits;
    });
  }

  /** Copies all weights out of tf.js. */
  snapshot(): HeadSnapshot {
    const read = (variable: tf.Variable) => variable.dataSync() as Float32Array;
    const shared = this.sharedFusionWeight ? read(this.sharedFusionWeight) : undefined;

    return {
      format: 'dyncim-head/1',
      kind: this.kind,
      classNames: this.classNames.slice(),
      hiddenWidth: this.hiddenWidth,
      modalities: this.modalities.map((modality, index) => {
        const own = this.perModality[index];
        return {
          ...modality,
          adapterWeight: read(own.adapterWeight).slice(),
          adapterBias: read(own.adapterBias).slice(),
          classifierWeight: read(own.classifierWeight).slice(),
          classifierBias: read(own.classifierBias).slice(),
          fusionWeight: (own.fusionWeight ? read(own.fusionWeight) : shared!).slice(),
        };
      }),
      fusionBias: read(this.fusionBias).slice(),
      inferenceModalityWeights: this.inferenceModalityWeights.slice(),
    };
  }

  /** Frees every variable. */
  dispose(): void {
    for (const group of this.parameterGroups()) tf.dispose(group.variables);
  }
}
