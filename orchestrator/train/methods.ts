import * as tf from '@tensorflow/tfjs';
import { FusionHead, HeadKind } from '../model/fusion-head';

/**
 * Training methods share one loop (trainer.ts) and differ in what they decide per step:
 * how modalities are weighted in the fusion, how samples are weighted in the loss, and which
 * unimodal losses join it. A method may also rewrite each modality's gradients before the
 * optimizer applies them (gradient-modulation methods need that hook).
 */

export interface TrainingBatch {
  /** Dataset indices of the batch's samples. */
  sampleIds: Int32Array;
  /** [B] class indices. */
  labels: Int32Array;
  /** [B, K] one-hot labels. */
  labelsOneHot: tf.Tensor2D;
  /** Per modality, [B, D_m]. */
  features: tf.Tensor2D[];
  /** Fraction of training done, in [0, 1]. */
  progress: number;
}

/** What a method decided for one step. Its tensors are freed by the trainer after the step. */
export interface StepPlan {
  /** Modality weights for the gradient pass: [B, M], [M], or undefined for all ones. */
  modalityWeights?: tf.Tensor1D | tf.Tensor2D;
  /** [B] weights of each sample's loss; they sum to 1. */
  sampleWeights: tf.Tensor1D;
  /** [B, M] weights of each sample's unimodal losses in its loss. */
  unimodalLossWeights: tf.Tensor2D;
  /** Train the unimodal classifiers as probes that do not steer the adapters. */
  detachUnimodalClassifiers: boolean;
  /** Numbers worth logging for this step (batch means). */
  stats?: Record<string, number | number[]>;
}

/** Gradients of one parameter group (a modality, or 'fusion'), keyed by variable name. */
export type GroupGradients = Map<string, tf.NamedTensorMap>;

export interface TrainingMethod {
  readonly name: string;
  readonly headKind: HeadKind;
  /** Decides the step's weights; may run no-gradient passes of the head. */
  planStep(head: FusionHead, batch: TrainingBatch): StepPlan;
  /** Optionally rewrites gradients per group; replaced tensors must be disposed by the method. */
  adjustGradients?(gradients: GroupGradients, head: FusionHead, batch: TrainingBatch): void;
  /** State to keep in checkpoints. */
  state?(): object;
  loadState?(state: object): void;
}

/**
 * Plain fusion: fused cross-entropy only, every sample and modality weighted equally. The
 * unimodal classifiers train as probes on stopped-gradient features, so per-modality accuracy
 * can be reported without changing what the baseline learns.
 */
export class PlainFusionMethod implements TrainingMethod {
  readonly name: string;
  readonly headKind: HeadKind = 'concat';

  constructor(name = 'concat') {
    this.name = name;
  }

  planStep(head: FusionHead, batch: TrainingBatch): StepPlan {
    const batchSize = batch.labels.length;
    const modalities = head.modalities.length;
    return {
      sampleWeights: tf.fill([batchSize], 1 / batchSize) as tf.Tensor1D,
      unimodalLossWeights: tf.ones([batchSize, modalities]) as tf.Tensor2D,
      detachUnimodalClassifiers: true,
    };
  }
}
