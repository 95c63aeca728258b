import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../util/errors';
import { FusionHead, HeadSnapshot } from '../model/fusion-head';
import { SeededRandom } from '../util/rng';
import { FeatureSet, SplitName, gatherRows, splitIndices } from './feature-set';
import { GroupGradients, StepPlan, TrainingBatch, TrainingMethod } from './methods';
import { accuracy, argmaxRows, macroF1 } from './metrics';

/**
 * The training loop shared by every method. It reads top to bottom: make batches, let the
 * method plan the step, take gradients per parameter group, let the method adjust them, apply
 * them. Everything tensor-valued in a step is freed before the next, so tf.js memory stays flat.
 */

export interface TrainerOptions {
  /** Passes over the training split. Default 60. */
  epochs?: number;
  /** Samples per step. Default 64. */
  batchSize?: number;
  /** Adam learning rate. Default 1e-3. */
  learningRate?: number;
  /** L2 penalty on adapter and classifier weights. Default 1e-4. */
  weightDecay?: number;
  /** Seed for shuffling. Default 0. */
  seed?: number;
  /** Momentum of the running average of modality weights kept for inference. Default 0.9. */
  modalityWeightMomentum?: number;
}

export interface EpochMetrics {
  epoch: number;
  trainLoss: number;
  val: EvaluationResult;
  /** Batch means of the method's step statistics over the epoch. */
  curriculum: Record<string, number | number[]>;
  inferenceModalityWeights: number[];
  seconds: number;
}

export interface EvaluationResult {
  loss: number;
  accuracy: number;
  macroF1: number;
  /** Accuracy of each modality's own classifier, by modality name. */
  modalityAccuracy: Record<string, number>;
  count: number;
}

export interface EpochHooks {
  /** Called after each epoch's evaluation; may write checkpoints and metrics. */
  onEpochEnd?(metrics: EpochMetrics, head: FusionHead): void | Promise<void>;
  /** Called after each step with the step number (1-based) and the total. */
  onStep?(step: number, totalSteps: number): void;
}

const DEFAULTS: Required<TrainerOptions> = {
  epochs: 60,
  batchSize: 64,
  learningRate: 1e-3,
  weightDecay: 1e-4,
  seed: 0,
  modalityWeightMomentum: 0.9,
};

/** Training blew up (a NaN or infinite loss): the run is stopped, not saved. */
export class TrainingDivergedError extends ConfigError {
  constructor(message: string) {
    super(message);
    this.name = 'TrainingDivergedError';
  }
}

/** The error for a diverged run, with what to try. */
export function divergence(what: string, options: { learningRate: number }): TrainingDivergedError {
  return new TrainingDivergedError(
    `training diverged: ${what}. Lower the learning rate (now ${options.learningRate}) or ` +
      'check the features for extreme values',
  );
}

/** Per-sample cross-entropy, [B]. */
export function crossEntropyPerSample(labelsOneHot: tf.Tensor2D, logits: tf.Tensor2D): tf.Tensor1D {
  return tf.neg(tf.sum(tf.mul(labelsOneHot, tf.logSoftmax(logits)), 1)) as tf.Tensor1D;
}

/** Groups a gradient map by the head's parameter groups. */
function groupGradients(head: FusionHead, gradients: tf.NamedTensorMap): GroupGradients {
  const grouped: GroupGradients = new Map();
  for (const group of head.parameterGroups()) {
    const own: tf.NamedTensorMap = {};
    for (const variable of group.variables) own[variable.name] = gradients[variable.name];
    grouped.set(group.name, own);
  }
  return grouped;
}

function flattenGroups(grouped: GroupGradients): tf.NamedTensorMap {
  const flat: tf.NamedTensorMap = {};
  for (const own of grouped.values()) Object.assign(flat, own);
  return flat;
}

export class Trainer {
  readonly options: Required<TrainerOptions>;
  private readonly optimizer: tf.Optimizer;
  private readonly decayed: tf.Variable[];

  constructor(
    readonly head: FusionHead,
    readonly method: TrainingMethod,
    readonly features: FeatureSet,
    options: TrainerOptions = {},
  ) {
    this.options = { ...DEFAULTS, ...options };
    this.optimizer = tf.train.adam(this.options.learningRate);
    this.decayed = head
      .parameterGroups()
      .flatMap((group) => group.variables)
      .filter((variable) => variable.name.endsWith('/weight'));
  }

  /** The training split's sample indices in a seeded order for one epoch. */
  private epochOrder(epoch: number): Int32Array {
    const train = Array.from(splitIndices(this.features, 'train'));
    return Int32Array.from(new SeededRandom(this.options.seed * 1000003 + epoch).shuffle(train));
  }

  /** Builds the tensors of one batch. */
  makeBatch(ids: Int32Array, progress: number): TrainingBatch {
    const labels = new Int32Array(ids.length);
    for (let i = 0; i < ids.length; i++) labels[i] = this.features.labels[ids[i]];

    const features = this.features.modalities.map((modality) => {
      return tf.tensor2d(gatherRows(modality, ids), [ids.length, modality.width]);
    });

    const labelsOneHot = tf.tidy(
      () => tf.oneHot(tf.tensor1d(labels, 'int32'), this.head.numClasses) as tf.Tensor2D,
    );
    return { sampleIds: ids, labels, labelsOneHot, features, progress };
  }

  /** The method-weighted training loss of one step (eq. 14's reweighted task loss). */
  private stepLoss(batch: TrainingBatch, plan: StepPlan): tf.Scalar {
    const outputs = this.head.forward(batch.features, {
      modalityWeights: plan.modalityWeights,
      detachUnimodalClassifiers: plan.detachUnimodalClassifiers,
    });

    let perSample = crossEntropyPerSample(batch.labelsOneHot, outputs.fusedLogits);
    outputs.unimodalLogits.forEach((logits, m) => {
      const weight = tf.squeeze(tf.slice(plan.unimodalLossWeights, [0, m], [-1, 1]), [1]);
      const unimodal = crossEntropyPerSample(batch.labelsOneHot, logits);
      perSample = tf.add(perSample, tf.mul(weight, unimodal));
    });

    let loss = tf.sum(tf.mul(perSample, plan.sampleWeights)) as tf.Scalar;
    if (this.options.weightDecay > 0) {
      const penalty = tf.addN(this.decayed.map((variable) => tf.sum(tf.square(variable))));
      loss = tf.add(loss, tf.mul(penalty, this.options.weightDecay / 2)) as tf.Scalar;
    }
    return loss;
  }

  /** Moves the stored inference modality weights toward this step's batch means. */
  private trackModalityWeights(plan: StepPlan): void {
    const means = plan.stats?.modalityWeightMeans;
    if (!Array.isArray(means)) return;

    const momentum = this.options.modalityWeightMomentum;
    const running = this.head.inferenceModalityWeights;
    means.forEach((mean, m) => {
      running[m] = momentum * running[m] + (1 - momentum) * mean;
    });
  }

  /** One optimisation step; returns the loss and the method's statistics. */
  trainStep(batch: TrainingBatch): { loss: number; stats?: StepPlan['stats'] } {
    const plan = this.method.planStep(this.head, batch);
    const variables = this.head.parameterGroups().flatMap((group) => group.variables);

    const { value, grads } = tf.variableGrads(() => this.stepLoss(batch, plan), variables);
    const grouped = groupGradients(this.head, grads);
    this.method.adjustGradients?.(grouped, this.head, batch);
    const finalGradients = flattenGroups(grouped);
    this.optimizer.applyGradients(finalGradients);

    const loss = value.dataSync()[0];
    this.trackModalityWeights(plan);
    tf.dispose([value, grads, finalGradients]);
    tf.dispose([plan.sampleWeights, plan.unimodalLossWeights]);
    if (plan.modalityWeights) plan.modalityWeights.dispose();
    return { loss, stats: plan.stats };
  }

  /** Loss, accuracy, macro-F1 and per-modality accuracy on one split. */
  evaluate(split: SplitName): EvaluationResult {
    return evaluateHead(
      this.head,
      this.features,
      splitIndices(this.features, split),
      this.options.batchSize,
    );
  }

  /** Trains for the configured epochs, evaluating on the validation split after each. */
  async fit(hooks: EpochHooks = {}): Promise<EpochMetrics[]> {
    const history: EpochMetrics[] = [];
    const trainCount = splitIndices(this.features, 'train').length;
    const stepsPerEpoch = Math.ceil(trainCount / this.options.batchSize);
    const totalSteps = stepsPerEpoch * this.options.epochs;
    let step = 0;

    for (let epoch = 1; epoch <= this.options.epochs; epoch++) {
      const started = Date.now();
      const order = this.epochOrder(epoch);
      const statTotals = new StatAverager();
      let lossTotal = 0;

      for (let start = 0; start < order.length; start += this.options.batchSize) {
        const ids = order.subarray(start, start + this.options.batchSize);
        const batch = this.makeBatch(ids, step / totalSteps);
        const result = this.trainStep(batch);
        tf.dispose([batch.labelsOneHot, ...batch.features]);
        if (!Number.isFinite(result.loss)) {
          throw divergence(`the training loss is ${result.loss} at epoch ${epoch}`, this.options);
        }

        lossTotal += result.loss * ids.length;
        if (result.stats) statTotals.add(result.stats);
        step++;
        hooks.onStep?.(step, totalSteps);
      }

      const metrics: EpochMetrics = {
        epoch,
        trainLoss: lossTotal / order.length,
        val: this.evaluate('val'),
        curriculum: statTotals.means(),
        inferenceModalityWeights: Array.from(this.head.inferenceModalityWeights),
        seconds: (Date.now() - started) / 1000,
      };
      history.push(metrics);
      await hooks.onEpochEnd?.(metrics, this.head);
      // steps never wait on I/O; give the event loop a turn so Ctrl-C is handled between epochs
      await new Promise((resolve) => setImmediate(resolve));
    }
    return history;
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}

/** Averages numeric and array-valued statistics over steps. */
class StatAverager {
  private readonly sums = new Map<string, number | number[]>();
  private count = 0;

  add(stats: Record<string, number | number[]>): void {
    this.count++;
    for (const [key, value] of Object.entries(stats)) {
      const previous = this.sums.get(key);
      if (typeof value === 'number') {
        this.sums.set(key, ((previous as number | undefined) ?? 0) + value);
      } else {
        const sum = (previous as number[] | undefined) ?? new Array(value.length).fill(0);
        this.sums.set(
          key,
          sum.map((total, i) => total + value[i]),
        );
      }
    }
  }

  means(): Record<string, number | number[]> {
    const result: Record<string, number | number[]> = {};
    for (const [key, sum] of this.sums) {
      result[key] = typeof sum === 'number' ? sum / this.count : sum.map((v) => v / this.count);
    }
    return result;
  }
}

/** Evaluates a head with its stored inference modality weights on the given samples. */
export function evaluateHead(
  head: FusionHead,
  features: FeatureSet,
  ids: Int32Array,
  batchSize = 256,
): EvaluationResult {
  const classes = head.numClasses;
  const fused = new Float32Array(ids.length * classes);
  const unimodal = head.modalities.map(() => new Float32Array(ids.length * classes));
  const labels = new Int32Array(ids.length);
  let lossTotal = 0;

  for (let start = 0; start < ids.length; start += batchSize) {
    const chunk = ids.subarray(start, start + batchSize);
    for (let i = 0; i < chunk.length; i++) labels[start + i] = features.labels[chunk[i]];

    tf.tidy(() => {
      const inputs = features.modalities.map((modality) => {
        return tf.tensor2d(gatherRows(modality, chunk), [chunk.length, modality.width]);
      });
      const weights = tf.tensor1d(head.inferenceModalityWeights);
      const outputs = head.forward(inputs, { modalityWeights: weights });
      const oneHot = tf.oneHot(
        tf.tensor1d(labels.subarray(start, start + chunk.length), 'int32'),
        classes,
      );

      lossTotal += tf
        .sum(crossEntropyPerSample(oneHot as tf.Tensor2D, outputs.fusedLogits))
        .dataSync()[0];
      fused.set(outputs.fusedLogits.dataSync(), start * classes);
      outputs.unimodalLogits.forEach((logits, m) =>
        unimodal[m].set(logits.dataSync(), start * classes),
      );
    });
  }

  const predictions = argmaxRows(fused, classes);
  const modalityAccuracy: Record<string, number> = {};
  head.modalities.forEach((modality, m) => {
    modalityAccuracy[modality.name] = accuracy(argmaxRows(unimodal[m], classes), labels);
  });

  return {
    loss: lossTotal / Math.max(ids.length, 1),
    accuracy: accuracy(predictions, labels),
    macroF1: macroF1(predictions, labels, classes),
    modalityAccuracy,
    count: ids.length,
  };
}

export type { HeadSnapshot };
