import { InputError, ShapeError } from '../util/errors';

/**
 * One batch as the curriculum sees it: detached model outputs, no tensors. The trainer builds
 * it from a cheap no-gradient pass (unimodal branches and the gate-free fused branch).
 */
export interface CurriculumBatch {
  sampleIds: Int32Array; // dataset indices of the batch's samples (for eq. 5's table)
  labels: Int32Array; // [B]
  unimodalProbs: Float32Array[]; // per modality, [B * K] softmax probabilities (detached)
  unimodalLosses: Float32Array[]; // per modality, [B] cross-entropy
  fusedProbs: Float32Array; // [B * K] from the gate-free (uniform-weight) pass
  fusedLosses: Float32Array; // [B]
  numClasses: number;
  progress: number; // fraction of training done, in [0, 1]
}

/** Sizes the batch must agree with. */
export interface BatchExpectations {
  /** Dataset size N: sample ids must lie in [0, N). */
  numSamples: number;
  /** Number of modalities M. */
  numModalities: number;
}

// float32 softmax rows sum to 1 within ~1e-6; a looser bound still catches logits passed as probs
const PROBABILITY_SUM_TOLERANCE = 1e-3;

function checkLength(field: string, actual: number, expected: number, meaning: string): void {
  if (actual !== expected) {
    throw new ShapeError(
      `curriculum batch field ${field} has ${actual} values, expected ${expected} (${meaning})`,
    );
  }
}

function checkFinite(field: string, values: ArrayLike<number>, minimum: number): void {
  for (let index = 0; index < values.length; index++) {
    const value = values[index];
    if (!Number.isFinite(value) || value < minimum) {
      throw new InputError(
        `curriculum batch field ${field}[${index}] is ${value}, expected a finite number ` +
          `>= ${minimum}`,
      );
    }
  }
}

function checkProbabilityRows(field: string, values: Float32Array, numClasses: number): void {
  checkFinite(field, values, 0);

  for (let row = 0; row * numClasses < values.length; row++) {
    let sum = 0;
    for (let k = 0; k < numClasses; k++) sum += values[row * numClasses + k];

    if (Math.abs(sum - 1) > PROBABILITY_SUM_TOLERANCE) {
      throw new InputError(
        `curriculum batch field ${field} row ${row} sums to ${sum.toPrecision(6)}, ` +
          'expected softmax probabilities summing to 1 (were logits passed instead?)',
      );
    }
  }
}

function checkIndices(field: string, values: Int32Array, limit: number, meaning: string): void {
  for (let index = 0; index < values.length; index++) {
    if (values[index] < 0 || values[index] >= limit) {
      throw new InputError(
        `curriculum batch field ${field}[${index}] is ${values[index]}, expected an integer ` +
          `in [0, ${limit}) (${meaning})`,
      );
    }
  }
}

function checkScalars(batch: CurriculumBatch): void {
  if (!Number.isInteger(batch.numClasses) || batch.numClasses < 2) {
    throw new InputError(
      `curriculum batch field numClasses is ${batch.numClasses}, expected an integer >= 2`,
    );
  }

  const progress = batch.progress;
  if (!Number.isFinite(progress) || progress < 0 || progress > 1) {
    throw new InputError(`curriculum batch field progress is ${progress}, expected [0, 1]`);
  }
}

function checkModalityLists(batch: CurriculumBatch, numModalities: number): void {
  const lists = { unimodalProbs: batch.unimodalProbs, unimodalLosses: batch.unimodalLosses };

  for (const [field, list] of Object.entries(lists)) {
    if (!Array.isArray(list) || list.length !== numModalities) {
      throw new ShapeError(
        `curriculum batch field ${field} holds ${Array.isArray(list) ? list.length : 'no'} ` +
          `arrays, expected one per modality (${numModalities})`,
      );
    }
  }
}

function checkLengths(batch: CurriculumBatch, numModalities: number): void {
  const batchSize = batch.labels.length;
  const rowValues = batchSize * batch.numClasses;
  const rowMeaning = `B * K = ${batchSize} * ${batch.numClasses}`;
  const sampleMeaning = `B = ${batchSize}, the length of labels`;

  if (batchSize === 0) throw new ShapeError('curriculum batch is empty (labels has 0 values)');
  checkLength('sampleIds', batch.sampleIds.length, batchSize, sampleMeaning);
  checkLength('fusedLosses', batch.fusedLosses.length, batchSize, sampleMeaning);
  checkLength('fusedProbs', batch.fusedProbs.length, rowValues, rowMeaning);

  for (let m = 0; m < numModalities; m++) {
    checkLength(`unimodalProbs[${m}]`, batch.unimodalProbs[m].length, rowValues, rowMeaning);
    checkLength(`unimodalLosses[${m}]`, batch.unimodalLosses[m].length, batchSize, sampleMeaning);
  }
}

function checkValues(batch: CurriculumBatch, expectations: BatchExpectations): void {
  checkIndices('labels', batch.labels, batch.numClasses, 'a class index below numClasses');
  checkIndices('sampleIds', batch.sampleIds, expectations.numSamples, 'a dataset index');
  checkFinite('fusedLosses', batch.fusedLosses, 0);
  checkProbabilityRows('fusedProbs', batch.fusedProbs, batch.numClasses);

  for (let m = 0; m < expectations.numModalities; m++) {
    checkFinite(`unimodalLosses[${m}]`, batch.unimodalLosses[m], 0);
    checkProbabilityRows(`unimodalProbs[${m}]`, batch.unimodalProbs[m], batch.numClasses);
  }
}

/**
 * Checks a batch before any curriculum math runs: lengths (ShapeError naming the field,
 * expected vs received) and values (InputError for NaN, infinities, negative losses,
 * probability rows that do not sum to 1, out-of-range labels or sample ids).
 */
export function validateCurriculumBatch(
  batch: CurriculumBatch,
  expectations: BatchExpectations,
): void {
  checkScalars(batch);
  checkModalityLists(batch, expectations.numModalities);
  checkLengths(batch, expectations.numModalities);
  checkValues(batch, expectations);
}
