/**
 * The curriculum objective (paper section 3.5, eq. 14) and the pace schedule for its eta(t).
 * For fixed model parameters eq. 14 is minimised per sample in closed form,
 * v_i = clip(1 - s_i / (2 eta), 0, 1) with score s_i = W_i L_i: a sample takes part (v > 0)
 * only when its weighted loss is below 2 eta. The paper leaves eta(t) open; here it is set per
 * batch so that a planned fraction p(t) of the batch takes part.
 */

export interface PaceFractionOptions {
  /** Fraction of training done, in [0, 1]. */
  progress: number;
  /** p0: admitted fraction at progress 0. */
  startFraction: number;
  /** Progress at which the admitted fraction reaches 1 (0: always 1). */
  rampEnd: number;
}

/** p(t) = p0 + (1 - p0) min(t / rampEnd, 1): linear from p0 to 1, then 1. */
export function paceFraction(options: PaceFractionOptions): number {
  if (options.rampEnd <= 0) return 1;
  const ramp = Math.min(options.progress / options.rampEnd, 1);
  return options.startFraction + (1 - options.startFraction) * ramp;
}

export interface PaceThresholdOptions {
  /** Target fraction p of samples with v > 0, in (0, 1]. */
  fraction: number;
  /** When every sample is admitted, eta = margin * max(s) / 2 with margin > 1. */
  fullAdmissionMargin: number;
}

// eta must stay positive so that v = 1 - s / (2 eta) is defined when every score is 0
const SMALLEST_ETA = 1e-12;

// p * B computed from a float progress can land a hair above an integer (2.0000000001)
const COUNT_TOLERANCE = 1e-9;

/** How many of `batchSize` samples a fraction admits: ceil(p B), at least 1. */
export function admittedCount(fraction: number, batchSize: number): number {
  return Math.min(batchSize, Math.max(1, Math.ceil(fraction * batchSize - COUNT_TOLERANCE)));
}

/**
 * eta such that the `admittedCount` lowest scores get v > 0: 2 eta is the first score above
 * the admitted ones, so that score and every higher one get v = 0. Samples tied with the last
 * admitted score are all admitted (a fraction a little above p). When all are admitted,
 * eta = margin * max(s) / 2, so even the highest score gets v = 1 - 1/margin > 0.
 */
export function paceThreshold(scores: Float64Array, options: PaceThresholdOptions): number {
  const sorted = Float64Array.from(scores).sort();
  const count = admittedCount(options.fraction, sorted.length);
  const lastAdmitted = sorted[count - 1];
  const firstAbove = sorted.find((score) => score > lastAdmitted);

  if (count === sorted.length || firstAbove === undefined) {
    return Math.max((options.fullAdmissionMargin * sorted[sorted.length - 1]) / 2, SMALLEST_ETA);
  }

  return firstAbove / 2;
}

/** v_i = clip(1 - s_i / (2 eta), 0, 1): the minimiser of eq. 14 over v for fixed scores. */
export function selfPacedWeights(scores: Float64Array, eta: number): Float64Array {
  return scores.map((score) => Math.min(1, Math.max(0, 1 - score / (2 * eta))));
}

/**
 * w_i = v_i W_i / sum_j v_j W_j, so the weights sum to 1 and the learning-rate scale does not
 * drift with the curriculum. If every v_i W_i is 0 (all W underflowed), falls back to equal
 * weights over the admitted samples, or over all when none is admitted.
 */
export function normalisedSampleWeights(
  paceWeights: Float64Array,
  difficultyWeights: Float64Array,
): Float64Array {
  const products = paceWeights.map((v, i) => v * difficultyWeights[i]);
  const total = products.reduce((sum, value) => sum + value, 0);
  if (total > 0) return products.map((value) => value / total);

  const admitted = paceWeights.map((v) => (v > 0 ? 1 : 0));
  const admittedTotal = admitted.reduce((sum, value) => sum + value, 0);
  if (admittedTotal > 0) return admitted.map((value) => value / admittedTotal);

  return paceWeights.map(() => 1 / paceWeights.length);
}

/**
 * Scores for the reversed (hard-to-easy) pace: each loss mirrored inside the batch's range,
 * L_max + L_min - L_i, so the hardest sample scores lowest and is admitted first.
 */
export function mirroredScores(losses: Float64Array): Float64Array {
  let low = Infinity;
  let high = -Infinity;
  losses.forEach((loss) => {
    low = Math.min(low, loss);
    high = Math.max(high, loss);
  });

  return losses.map((loss) => high + low - loss);
}
