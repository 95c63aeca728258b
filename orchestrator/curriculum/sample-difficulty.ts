import { InputError } from '../util/errors';
import type { CurriculumBatch } from './curriculum-batch';
import { SAMPLE_METRICS, SampleMetric, StabilityForm } from './curriculum-options';

/**
 * Sample-level curriculum (paper section 3.2, eqs. 1-6): how hard each sample of a batch is,
 * from detached predictions. Arrays indexed by sample and modality are laid out [B * M],
 * sample-major (value for sample i, modality m at i * M + m).
 */

/** The three metrics of one batch, in SAMPLE_METRICS order: deviation, consistency, stability. */
export type MetricTriple<T> = [T, T, T];

export function sigmoid(value: number): number {
  return 1 / (1 + Math.exp(-value));
}

function batchSizeOf(batch: CurriculumBatch): number {
  return batch.labels.length;
}

/** U_{i,m}: Shannon entropy (nats) of each modality's prediction; 0 log 0 counts as 0. */
export function modalityEntropies(batch: CurriculumBatch): Float64Array {
  const batchSize = batchSizeOf(batch);
  const numModalities = batch.unimodalProbs.length;
  const numClasses = batch.numClasses;
  const entropies = new Float64Array(batchSize * numModalities);

  for (let i = 0; i < batchSize; i++) {
    for (let m = 0; m < numModalities; m++) {
      let entropy = 0;
      for (let k = 0; k < numClasses; k++) {
        const p = batch.unimodalProbs[m][i * numClasses + k];
        if (p > 0) entropy -= p * Math.log(p);
      }
      entropies[i * numModalities + m] = entropy;
    }
  }

  return entropies;
}

/**
 * Softmax over modalities of -values, per sample ([B * M] in and out). Shifted by the row
 * extreme so large values cannot overflow exp.
 */
export function softmaxOfNegated(values: Float64Array, numModalities: number): Float64Array {
  const weights = new Float64Array(values.length);

  for (let start = 0; start < values.length; start += numModalities) {
    let smallest = Infinity;
    for (let m = 0; m < numModalities; m++) smallest = Math.min(smallest, values[start + m]);

    let total = 0;
    for (let m = 0; m < numModalities; m++) {
      weights[start + m] = Math.exp(smallest - values[start + m]);
      total += weights[start + m];
    }

    for (let m = 0; m < numModalities; m++) weights[start + m] /= total;
  }

  return weights;
}

/** delta_{i,m} = softmax_m(-U_{i,m}) (eq. 1): confident modalities weigh more in L_task. */
export function entropyWeights(batch: CurriculumBatch): Float64Array {
  return softmaxOfNegated(modalityEntropies(batch), batch.unimodalProbs.length);
}

/**
 * D_L,i = L_f,i + sum_m delta_{i,m} L_{m,i} (eq. 1). This is also the task loss L_task,i that
 * eq. 14 weighs.
 */
export function predictionDeviation(batch: CurriculumBatch, delta: Float64Array): Float64Array {
  const batchSize = batchSizeOf(batch);
  const numModalities = batch.unimodalLosses.length;
  const deviation = new Float64Array(batchSize);

  for (let i = 0; i < batchSize; i++) {
    let value = batch.fusedLosses[i];
    for (let m = 0; m < numModalities; m++) {
      value += delta[i * numModalities + m] * batch.unimodalLosses[m][i];
    }
    deviation[i] = value;
  }

  return deviation;
}

/** D_C,i = (1/M) sum_m ||p_m - p_f||^2 (eq. 2). */
export function predictionConsistency(batch: CurriculumBatch): Float64Array {
  const batchSize = batchSizeOf(batch);
  const numModalities = batch.unimodalProbs.length;
  const numClasses = batch.numClasses;
  const consistency = new Float64Array(batchSize);

  for (let i = 0; i < batchSize; i++) {
    let total = 0;
    for (let m = 0; m < numModalities; m++) {
      for (let k = 0; k < numClasses; k++) {
        const offset = i * numClasses + k;
        const difference = batch.unimodalProbs[m][offset] - batch.fusedProbs[offset];
        total += difference * difference;
      }
    }
    consistency[i] = total / numModalities;
  }

  return consistency;
}

export interface StabilityOptions {
  /** 'mean-clamped' averages the wrong-class logs; 'paper-sum' sums them as printed. */
  form: StabilityForm;
  /** Probabilities are raised to at least this before the log (both forms). */
  probabilityFloor: number;
}

/**
 * D_S,i = -log p_f[y] + (sum or mean over k != y of) log p_f[k] (eq. 3), on the fused
 * prediction. The printed sum is unbounded below, so the default averages over the K-1 wrong
 * classes.
 */
export function predictionStability(
  batch: CurriculumBatch,
  options: StabilityOptions,
): Float64Array {
  const batchSize = batchSizeOf(batch);
  const numClasses = batch.numClasses;
  const stability = new Float64Array(batchSize);
  const logOf = (p: number): number => Math.log(Math.max(p, options.probabilityFloor));

  for (let i = 0; i < batchSize; i++) {
    const label = batch.labels[i];
    let wrongLogSum = 0;
    for (let k = 0; k < numClasses; k++) {
      if (k !== label) wrongLogSum += logOf(batch.fusedProbs[i * numClasses + k]);
    }

    const wrongTerm = options.form === 'paper-sum' ? wrongLogSum : wrongLogSum / (numClasses - 1);
    stability[i] = -logOf(batch.fusedProbs[i * numClasses + label]) + wrongTerm;
  }

  return stability;
}

/** D'_j = sigmoid(s_j D_j) (eq. 4), element-wise. */
export function standardiseMetric(values: Float64Array, sign: number): Float64Array {
  return values.map((value) => sigmoid(sign * value));
}

export interface VolatilityTrackerOptions {
  /** Dataset size N: the last-seen table has one row per sample. */
  numSamples: number;
  /** gamma of eq. 5. */
  decay: number;
}

export interface VolatilityState {
  volatility: number[];
  lastSeen: number[];
  seen: number[];
}

/**
 * Eq. 5: for each metric, an EMA of how much a sample's standardised value moved since the
 * sample was last seen. Keeps the last value per sample (an N x 3 table, the paper's O(N M)
 * memory) because consecutive batches hold different samples.
 */
export class VolatilityTracker {
  private readonly numSamples: number;

  private readonly decay: number;

  private readonly volatility = new Float64Array(3);

  private readonly lastSeen: Float64Array;

  private readonly seen: Uint8Array;

  constructor(options: VolatilityTrackerOptions) {
    this.numSamples = options.numSamples;
    this.decay = options.decay;
    this.lastSeen = new Float64Array(options.numSamples * 3);
    this.seen = new Uint8Array(options.numSamples);
  }

  /**
   * E_j <- gamma E_j + (1 - gamma) mean_i |D'_j,i - previous D'_j,i| over the batch's samples
   * seen before (eq. 5); E is unchanged when none was. Then records the batch's values.
   */
  update(sampleIds: Int32Array, standardised: MetricTriple<Float64Array>): void {
    const change = [0, 0, 0];
    let revisits = 0;

    sampleIds.forEach((id, i) => {
      if (!this.seen[id]) return;
      revisits++;
      for (let j = 0; j < 3; j++) {
        change[j] += Math.abs(standardised[j][i] - this.lastSeen[id * 3 + j]);
      }
    });

    if (revisits > 0) {
      for (let j = 0; j < 3; j++) {
        const meanChange = change[j] / revisits;
        this.volatility[j] = this.decay * this.volatility[j] + (1 - this.decay) * meanChange;
      }
    }

    sampleIds.forEach((id, i) => {
      for (let j = 0; j < 3; j++) this.lastSeen[id * 3 + j] = standardised[j][i];
      this.seen[id] = 1;
    });
  }

  /** The current E_j, in SAMPLE_METRICS order. */
  current(): MetricTriple<number> {
    return [this.volatility[0], this.volatility[1], this.volatility[2]];
  }

  state(): VolatilityState {
    return {
      volatility: Array.from(this.volatility),
      lastSeen: Array.from(this.lastSeen),
      seen: Array.from(this.seen),
    };
  }

  /** Restores a state() snapshot; throws InputError naming the field that does not fit. */
  loadState(state: VolatilityState): void {
    checkStateArray('volatility', state.volatility, 3, 0, Infinity);
    checkStateArray('lastSeen', state.lastSeen, this.numSamples * 3, 0, 1);
    checkStateArray('seen', state.seen, this.numSamples, 0, 1);

    this.volatility.set(state.volatility);
    this.lastSeen.set(state.lastSeen);
    this.seen.set(state.seen);
  }
}

function checkStateArray(
  field: string,
  values: unknown,
  length: number,
  low: number,
  high: number,
): asserts values is number[] {
  if (!Array.isArray(values) || values.length !== length) {
    const received = Array.isArray(values) ? `${values.length} values` : typeof values;
    throw new InputError(
      `curriculum state field volatility.${field} must hold ${length} numbers, ` +
        `received ${received}`,
    );
  }

  const bad = values.findIndex((v) => typeof v !== 'number' || !(v >= low && v <= high));
  if (bad >= 0) {
    throw new InputError(
      `curriculum state field volatility.${field}[${bad}] is ${JSON.stringify(values[bad])}, ` +
        `expected a number in [${low}, ${high}]`,
    );
  }
}

/**
 * Psi_j = E_j / sum E over the enabled metrics (eq. 6); uniform over them until any E_j > 0.
 * Disabled metrics get 0.
 */
export function metricWeights(
  volatility: MetricTriple<number>,
  enabled: readonly SampleMetric[],
): MetricTriple<number> {
  const isOn = SAMPLE_METRICS.map((metric) => enabled.includes(metric));
  const total = volatility.reduce((sum, value, j) => sum + (isOn[j] ? value : 0), 0);
  const count = isOn.filter(Boolean).length;

  return volatility.map((value, j) => {
    if (!isOn[j]) return 0;
    return total > 0 ? value / total : 1 / count;
  }) as MetricTriple<number>;
}

/** D_task,i = sum_j Psi_j D'_j,i (after eq. 6). */
export function taskDifficulty(
  standardised: MetricTriple<Float64Array>,
  psi: MetricTriple<number>,
): Float64Array {
  const difficulty = new Float64Array(standardised[0].length);

  for (let i = 0; i < difficulty.length; i++) {
    difficulty[i] =
      psi[0] * standardised[0][i] + psi[1] * standardised[1][i] + psi[2] * standardised[2][i];
  }

  return difficulty;
}
