import * as tf from '@tensorflow/tfjs';
import { FusionHead, HeadSnapshot } from '../model/fusion-head';
import { SeededRandom } from '../util/rng';
import { ExportedHead } from './exported-head';

/**
 * Checks an exported head against the tf.js head it came from: both run on the same random
 * features, and the fused and unimodal logits must agree to float32 rounding. This catches a
 * wrong weight layout or a missing bias, which would otherwise only show as lower accuracy.
 */

export interface VerifyExportOptions {
  /** The snapshot that was exported. */
  snapshot: HeadSnapshot;
  /** The exported .onnx file. */
  modelPath: string;
  /** Random feature rows to compare on. Default 16. */
  rows?: number;
  /** Seed for the random features. Default 0. */
  seed?: number;
}

export interface VerifyExportResult {
  rows: number;
  /**
   * Largest |ONNX - tf.js| over fused and unimodal logits; Infinity where only one side is
   * finite or they are different non-finite values, never NaN.
   */
  maxAbsDifference: number;
  /** Rows whose fused argmax differs between the two. */
  argmaxDisagreements: number;
  /** Largest |logit| over the finite fused and unimodal logits of both sides. */
  maxAbsLogit: number;
  /** Logits, fused or unimodal, on either side that are infinite or NaN (float32 overflow). */
  nonFiniteLogits: number;
}

function randomFeatures(random: SeededRandom, rows: number, width: number): Float32Array {
  const values = new Float32Array(rows * width);
  for (let i = 0; i < values.length; i++) values[i] = random.normal();
  return values;
}

function maxAbsDifference(left: ArrayLike<number>, right: ArrayLike<number>): number {
  let largest = 0;
  for (let i = 0; i < left.length; i++) {
    if (left[i] === right[i]) continue;
    const difference = Math.abs(left[i] - right[i]);
    // a NaN on either side, or two different infinities, is as far apart as values get
    largest = Math.max(largest, Number.isNaN(difference) ? Infinity : difference);
  }
  return largest;
}

/** Folds one array of logits into the running largest finite |logit| and non-finite count. */
function tally(values: ArrayLike<number>, totals: { maxAbsLogit: number; nonFinite: number }) {
  for (let i = 0; i < values.length; i++) {
    if (Number.isFinite(values[i])) {
      totals.maxAbsLogit = Math.max(totals.maxAbsLogit, Math.abs(values[i]));
    } else {
      totals.nonFinite++;
    }
  }
}

function argmaxRow(values: ArrayLike<number>, row: number, classes: number): number {
  let best = 0;
  for (let k = 1; k < classes; k++) {
    if (values[row * classes + k] > values[row * classes + best]) best = k;
  }
  return best;
}

/** tf.js fused and unimodal logits of a snapshot's head on the given features. */
function referenceLogits(
  snapshot: HeadSnapshot,
  features: Record<string, Float32Array>,
  rows: number,
): { fused: Float32Array; unimodal: Float32Array[] } {
  const head = FusionHead.fromSnapshot(snapshot);
  try {
    return tf.tidy(() => {
      const inputs = snapshot.modalities.map((modality) =>
        tf.tensor2d(features[modality.name], [rows, modality.featureWidth]),
      );
      const weights = tf.tensor1d(snapshot.inferenceModalityWeights);
      const outputs = head.forward(inputs, { modalityWeights: weights });
      return {
        fused: outputs.fusedLogits.dataSync() as Float32Array,
        unimodal: outputs.unimodalLogits.map((logits) => logits.dataSync() as Float32Array),
      };
    });
  } finally {
    head.dispose();
  }
}

/** Runs both heads on random features and reports how far apart they are. */
export async function verifyExport(options: VerifyExportOptions): Promise<VerifyExportResult> {
  const rows = options.rows ?? 16;
  const random = new SeededRandom(options.seed ?? 0);
  const features: Record<string, Float32Array> = {};
  for (const modality of options.snapshot.modalities) {
    features[modality.name] = randomFeatures(random, rows, modality.featureWidth);
  }

  const reference = referenceLogits(options.snapshot, features, rows);
  const exported = await ExportedHead.create({ modelPath: options.modelPath, device: 'cpu' });
  let outputs;
  try {
    outputs = await exported.run(features, rows);
  } finally {
    await exported.dispose();
  }

  let largest = maxAbsDifference(outputs.logits, reference.fused);
  const totals = { maxAbsLogit: 0, nonFinite: 0 };
  tally(outputs.logits, totals);
  tally(reference.fused, totals);
  options.snapshot.modalities.forEach((modality, index) => {
    const unimodal = outputs.unimodalLogits[modality.name];
    largest = Math.max(largest, maxAbsDifference(unimodal, reference.unimodal[index]));
    tally(unimodal, totals);
    tally(reference.unimodal[index], totals);
  });

  let disagreements = 0;
  for (let row = 0; row < rows; row++) {
    const classes = outputs.numClasses;
    if (argmaxRow(outputs.logits, row, classes) !== argmaxRow(reference.fused, row, classes)) {
      disagreements++;
    }
  }
  return {
    rows,
    maxAbsDifference: largest,
    argmaxDisagreements: disagreements,
    maxAbsLogit: totals.maxAbsLogit,
    nonFiniteLogits: totals.nonFinite,
  };
}
