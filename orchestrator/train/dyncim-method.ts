import * as tf from '@tensorflow/tfjs';
import { FusionHead, HeadKind } from '../model/fusion-head';
import { DynCimCurriculum } from '../curriculum/dyncim-curriculum';
import { DynCimOptions } from '../curriculum/curriculum-options';
import { StepPlan, TrainingBatch, TrainingMethod } from './methods';
import { crossEntropyPerSample, divergence } from './trainer';

/**
 * DynCIM as a training method. Each step first runs the head without gradients and with
 * uniform modality weights (the gate needs the fused loss, and the fused loss depends on the
 * gate, so the gate is read off this gate-free pass), hands the detached probabilities and
 * losses to the curriculum, and turns its answer into the gradient pass's weights:
 * per-sample modality weights omega* (eq. 13), sample weights v_i W_i (eq. 14) and unimodal
 * loss weights delta (eq. 1).
 */
export class DynCimMethod implements TrainingMethod {
  readonly name = 'dyncim';
  readonly headKind: HeadKind = 'weighted-sum';
  readonly curriculum: DynCimCurriculum;

  /** For the divergence message: the learning rate the trainer uses. */
  trainerOptions = { learningRate: Number.NaN };

  constructor(options: { numSamples: number; numModalities: number } & Partial<DynCimOptions>) {
    this.curriculum = new DynCimCurriculum(options);
  }

  /** The gate-free pass: per-modality and fused probabilities and losses, detached. */
  private probe(head: FusionHead, batch: TrainingBatch) {
    const modalities = head.modalities.length;
    const stored = head.inferenceModalityWeights;
    // uniform weights at the scale the fusion currently runs at, so the probe's fused loss is
    // comparable with the gradient pass's
    const scale = stored.reduce((sum, value) => sum + value, 0) / modalities;

    const tensors = tf.tidy(() => {
      const outputs = head.forward(batch.features, {
        modalityWeights: tf.fill([modalities], scale) as tf.Tensor1D,
      });
      return {
        unimodalProbs: outputs.unimodalLogits.map((logits) => tf.softmax(logits)),
        unimodalLosses: outputs.unimodalLogits.map((logits) =>
          crossEntropyPerSample(batch.labelsOneHot, logits),
        ),
        fusedProbs: tf.softmax(outputs.fusedLogits),
        fusedLosses: crossEntropyPerSample(batch.labelsOneHot, outputs.fusedLogits),
      };
    });

    const read = (tensor: tf.Tensor) => tensor.dataSync() as Float32Array;
    const values = {
      unimodalProbs: tensors.unimodalProbs.map(read),
      unimodalLosses: tensors.unimodalLosses.map(read),
      fusedProbs: read(tensors.fusedProbs),
      fusedLosses: read(tensors.fusedLosses),
    };
    tf.dispose(tensors);

    // a NaN here means the head's weights already diverged; say so rather than letting the
    // curriculum's input checks report a NaN loss
    const losses = [values.fusedLosses, ...values.unimodalLosses];
    if (losses.some((array) => array.some((value) => !Number.isFinite(value)))) {
      throw divergence('a loss of the gate-free pass is not finite', this.trainerOptions);
    }
    return values;
  }

  planStep(head: FusionHead, batch: TrainingBatch): StepPlan {
    const batchSize = batch.labels.length;
    const modalities = head.modalities.length;
    const probe = this.probe(head, batch);

    const decision = this.curriculum.step({
      sampleIds: batch.sampleIds,
      labels: batch.labels,
      numClasses: head.numClasses,
      progress: batch.progress,
      ...probe,
    });

    const modalityWeightMeans = new Array<number>(modalities).fill(0);
    for (let i = 0; i < batchSize; i++) {
      for (let m = 0; m < modalities; m++) {
        modalityWeightMeans[m] += decision.modalityWeights[i * modalities + m] / batchSize;
      }
    }

    return {
      modalityWeights: tf.tensor2d(decision.modalityWeights, [batchSize, modalities]),
      sampleWeights: tf.tensor1d(decision.sampleWeights),
      unimodalLossWeights: tf.tensor2d(decision.unimodalLossWeights, [batchSize, modalities]),
      detachUnimodalClassifiers: false,
      stats: {
        ...flattenStats(decision.stats as unknown as Record<string, unknown>),
        modalityWeightMeans,
      },
    };
  }

  state(): object {
    return this.curriculum.state();
  }

  loadState(state: object): void {
    this.curriculum.loadState(state);
  }
}

/** Keeps the numeric and numeric-array fields of the curriculum's statistics. */
function flattenStats(stats: Record<string, unknown>): Record<string, number | number[]> {
  const result: Record<string, number | number[]> = {};
  for (const [key, value] of Object.entries(stats)) {
    if (typeof value === 'number') result[key] = value;
    else if (ArrayBuffer.isView(value)) result[key] = Array.from(value as Float32Array);
    else if (Array.isArray(value) && value.every((item) => typeof item === 'number')) {
      result[key] = value as number[];
    }
  }
  return result;
}
