import type { CurriculumBatch } from './curriculum-batch';
import type { GateSource, GmrForm } from './curriculum-options';
import { sigmoid, softmaxOfNegated } from './sample-difficulty';

/**
 * Modality-level curriculum and gating (paper sections 3.3-3.4, eqs. 7-12): how much fusion
 * gains over each modality, per sample, and the gate and fusion weights that follow. Arrays
 * indexed by sample and modality are [B * M], sample-major.
 */

/** The per-sample losses this part reads. */
export type BatchLosses = Pick<CurriculumBatch, 'unimodalLosses' | 'fusedLosses'>;

/**
 * Losses are floored here before they divide or enter a log: a sample the model already gets
 * exactly right has cross-entropy 0, and 0/0 would put NaN into every weight downstream.
 */
export const LOSS_FLOOR = 1e-12;

function flooredLoss(loss: number): number {
  return Math.max(loss, LOSS_FLOOR);
}

export interface GmrOptions {
  /** 'loss-unimodal-over-fused' (default reading) or 'paper' (L_f / L_m as printed). */
  form: GmrForm;
  /** Bound on |log(L_m / L_f)| in the default form. */
  logRatioLimit: number;
}

/**
 * D_G,i: geometric mean over modalities of a loss ratio (eq. 7), computed as exp of the mean
 * log ratio. Default: L_m / L_f, each log clamped to [-limit, limit], so D_G > 1 means fusion
 * beat the modalities as the paper's text says; 'paper': L_f / L_m, unclamped.
 */
export function geometricMeanRatio(losses: BatchLosses, options: GmrOptions): Float64Array {
  const numModalities = losses.unimodalLosses.length;
  const ratios = new Float64Array(losses.fusedLosses.length);
  const limit = options.logRatioLimit;

  for (let i = 0; i < ratios.length; i++) {
    const logFused = Math.log(flooredLoss(losses.fusedLosses[i]));
    let logSum = 0;
    for (let m = 0; m < numModalities; m++) {
      const logUnimodal = Math.log(flooredLoss(losses.unimodalLosses[m][i]));
      logSum +=
        options.form === 'paper'
          ? logFused - logUnimodal
          : Math.min(limit, Math.max(-limit, logUnimodal - logFused));
    }
    ratios[i] = Math.exp(logSum / numModalities);
  }

  return ratios;
}

/** Gain_{i,m} = exp((L_m - L_f) / L_m) (eq. 9): in (0, e], above 1 when fusion helped. */
export function fusionGains(losses: BatchLosses): Float64Array {
  const numModalities = losses.unimodalLosses.length;
  const batchSize = losses.fusedLosses.length;
  const gains = new Float64Array(batchSize * numModalities);

  for (let i = 0; i < batchSize; i++) {
    for (let m = 0; m < numModalities; m++) {
      // both floored, so two zero losses give Gain 1 (no gain), not e
      const unimodal = flooredLoss(losses.unimodalLosses[m][i]);
      const fused = flooredLoss(losses.fusedLosses[i]);
      gains[i * numModalities + m] = Math.exp((unimodal - fused) / unimodal);
    }
  }

  return gains;
}

/** omega_{i,m} = softmax_m(-L_{m,i}) (eq. 10): the lower a modality's loss, the more weight. */
export function lossWeights(losses: BatchLosses): Float64Array {
  const numModalities = losses.unimodalLosses.length;
  const batchSize = losses.fusedLosses.length;
  const stacked = new Float64Array(batchSize * numModalities);

  for (let i = 0; i < batchSize; i++) {
    for (let m = 0; m < numModalities; m++) {
      stacked[i * numModalities + m] = losses.unimodalLosses[m][i];
    }
  }

  return softmaxOfNegated(stacked, numModalities);
}

export interface HmirOptions {
  numModalities: number;
  /** epsilon of eq. 8. */
  epsilon: number;
}

/** D_H,i = M / sum_m omega_m (1 + 1 / (Gain_m + eps)) (eq. 8). */
export function harmonicMeanImprovement(
  omega: Float64Array,
  gains: Float64Array,
  options: HmirOptions,
): Float64Array {
  const numModalities = options.numModalities;
  const improvement = new Float64Array(omega.length / numModalities);

  for (let i = 0; i < improvement.length; i++) {
    let denominator = 0;
    for (let m = 0; m < numModalities; m++) {
      const at = i * numModalities + m;
      denominator += omega[at] * (1 + 1 / (gains[at] + options.epsilon));
    }
    improvement[i] = numModalities / denominator;
  }

  return improvement;
}

export interface BalanceOptions {
  numModalities: number;
  /** lambda_0 of eq. 12. */
  lambdaBase: number;
}

/**
 * lambda_{i,m} = lambda_0 + sigmoid(|Gain_m - mean Gain|) / 2 (eq. 12). The distance to the
 * mean is summed from pairwise differences, (1/M)|sum_n (Gain_m - Gain_n)|, so that with two
 * modalities both get bit-identical values (the symmetry docs/method.md describes).
 */
export function balanceFactors(gains: Float64Array, options: BalanceOptions): Float64Array {
  const numModalities = options.numModalities;
  const factors = new Float64Array(gains.length);

  for (let start = 0; start < gains.length; start += numModalities) {
    for (let m = 0; m < numModalities; m++) {
      let spread = 0;
      for (let n = 0; n < numModalities; n++) spread += gains[start + m] - gains[start + n];
      const distance = Math.abs(spread) / numModalities;
      factors[start + m] = options.lambdaBase + 0.5 * sigmoid(distance);
    }
  }

  return factors;
}

export interface GateInputs {
  numModalities: number;
  /** D_G per sample [B]. */
  gmr: Float64Array;
  /** D_H per sample [B]. */
  hmir: Float64Array;
  /** lambda per sample and modality [B * M]. */
  lambda: Float64Array;
  /** 'both' is eq. 11; 'gmr' and 'hmir' feed one signal alone (Table 5). */
  source: GateSource;
}

/** g_{i,m} = sigmoid(lambda_m D_G + (1 - lambda_m) D_H) (eq. 11), or one term alone. */
export function modalityGates(inputs: GateInputs): Float64Array {
  const numModalities = inputs.numModalities;
  const gates = new Float64Array(inputs.lambda.length);

  for (let at = 0; at < gates.length; at++) {
    const i = Math.floor(at / numModalities);
    const lambda = inputs.lambda[at];
    const blended =
      inputs.source === 'gmr'
        ? inputs.gmr[i]
        : inputs.source === 'hmir'
          ? inputs.hmir[i]
          : lambda * inputs.gmr[i] + (1 - lambda) * inputs.hmir[i];
    gates[at] = sigmoid(blended);
  }

  return gates;
}

export interface FusedWeightOptions {
  numModalities: number;
  /** tau: gates below it leave the active set, except the largest gate of each sample. */
  threshold: number;
  /** mu in omega* = omega (1 + mu g). */
  rate: number;
  /** Rescale omega* to sum to 1 over the active set. */
  renormalise: boolean;
}

/**
 * omega*_{i,m} = omega_m (1 + mu g_m) for modalities in the active set, 0 outside it
 * (section 3.4.2). The active set keeps g >= tau and always every modality tied for the
 * largest gate, so a sample never loses all its modalities.
 */
export function fusedModalityWeights(
  omega: Float64Array,
  gates: Float64Array,
  options: FusedWeightOptions,
): Float64Array {
  const numModalities = options.numModalities;
  const weights = new Float64Array(omega.length);

  for (let start = 0; start < omega.length; start += numModalities) {
    let largestGate = -Infinity;
    for (let m = 0; m < numModalities; m++) largestGate = Math.max(largestGate, gates[start + m]);

    let total = 0;
    for (let m = 0; m < numModalities; m++) {
      const gate = gates[start + m];
      const active = gate >= options.threshold || gate === largestGate;
      weights[start + m] = active ? omega[start + m] * (1 + options.rate * gate) : 0;
      total += weights[start + m];
    }

    if (options.renormalise && total > 0) {
      for (let m = 0; m < numModalities; m++) weights[start + m] /= total;
    }
  }

  return weights;
}

/** D_fuse,i = (1/M) sum_m g_{i,m} (after eq. 14). */
export function fusionDifficulty(gates: Float64Array, numModalities: number): Float64Array {
  const difficulty = new Float64Array(gates.length / numModalities);

  for (let i = 0; i < difficulty.length; i++) {
    let total = 0;
    for (let m = 0; m < numModalities; m++) total += gates[i * numModalities + m];
    difficulty[i] = total / numModalities;
  }

  return difficulty;
}
