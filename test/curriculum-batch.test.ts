import {
  CurriculumBatch,
  validateCurriculumBatch,
} from '../orchestrator/curriculum/curriculum-batch';
import { InputError, ShapeError } from '../orchestrator/util/errors';

const EXPECT = { numSamples: 10, numModalities: 2 };

/** B = 2, M = 2, K = 3, all valid. */
function validBatch(): CurriculumBatch {
  return {
    sampleIds: Int32Array.from([4, 9]),
    labels: Int32Array.from([0, 2]),
    unimodalProbs: [
      Float32Array.from([1, 0, 0, 0.5, 0.25, 0.25]),
      Float32Array.from([0.2, 0.3, 0.5, 0.25, 0.25, 0.5]),
    ],
    unimodalLosses: [Float32Array.from([0, 1.386]), Float32Array.from([1.609, 0.693])],
    fusedProbs: Float32Array.from([0.5, 0.25, 0.25, 0.2, 0.2, 0.6]),
    fusedLosses: Float32Array.from([0.693, 0.511]),
    numClasses: 3,
    progress: 0.3,
  };
}

function expectRejected(
  change: (batch: CurriculumBatch) => void,
  kind: typeof InputError | typeof ShapeError,
  message: RegExp,
): void {
  const batch = validBatch();
  change(batch);

  expect(() => validateCurriculumBatch(batch, EXPECT)).toThrow(kind);
  expect(() => validateCurriculumBatch(batch, EXPECT)).toThrow(message);
}

describe('validateCurriculumBatch', () => {
  it('accepts a valid batch, including probabilities of exactly 0 and 1 and a zero loss', () => {
    expect(() => validateCurriculumBatch(validBatch(), EXPECT)).not.toThrow();
  });

  it('names a field of the wrong length with expected and received sizes', () => {
    expectRejected(
      (b) => (b.fusedProbs = new Float32Array(5).fill(0.2)),
      ShapeError,
      /fusedProbs has 5 values, expected 6 \(B \* K = 2 \* 3\)/,
    );
    expectRejected(
      (b) => (b.unimodalLosses[1] = Float32Array.from([1])),
      ShapeError,
      /unimodalLosses\[1\] has 1 values, expected 2/,
    );
    expectRejected(
      (b) => (b.sampleIds = Int32Array.from([1, 2, 3])),
      ShapeError,
      /sampleIds has 3 values, expected 2/,
    );
    expectRejected(
      (b) => b.unimodalProbs.pop(),
      ShapeError,
      /unimodalProbs holds 1 arrays, expected one per modality \(2\)/,
    );
    expectRejected((b) => (b.labels = new Int32Array(0)), ShapeError, /empty/);
  });

  it('names NaN, infinite and negative values', () => {
    expectRejected(
      (b) => (b.fusedLosses[1] = NaN),
      InputError,
      /fusedLosses\[1\] is NaN, expected a finite number >= 0/,
    );
    expectRejected(
      (b) => (b.unimodalLosses[0][0] = Infinity),
      InputError,
      /unimodalLosses\[0\]\[0\] is Infinity/,
    );
    expectRejected(
      (b) => (b.unimodalLosses[1][1] = -0.5),
      InputError,
      /unimodalLosses\[1\]\[1\] is -0.5/,
    );
    expectRejected(
      (b) => (b.unimodalProbs[1][4] = NaN),
      InputError,
      /unimodalProbs\[1\]\[4\] is NaN/,
    );
  });

  it('rejects probability rows that do not sum to 1', () => {
    expectRejected(
      (b) => b.fusedProbs.set([2.1, -0.3, 0.5], 3),
      InputError,
      /fusedProbs\[4\] is -0.3/,
    );
    expectRejected(
      (b) => b.unimodalProbs[0].set([1.5, 0.7, 0.2], 3),
      InputError,
      /unimodalProbs\[0\] row 1 sums to 2.40000, .*logits/,
    );
  });

  it('rejects labels, sample ids and progress out of range', () => {
    expectRejected((b) => (b.labels[0] = 3), InputError, /labels\[0\] is 3, .*\[0, 3\)/);
    expectRejected((b) => (b.sampleIds[1] = 10), InputError, /sampleIds\[1\] is 10, .*\[0, 10\)/);
    expectRejected((b) => (b.sampleIds[0] = -1), InputError, /sampleIds\[0\] is -1/);
    expectRejected((b) => (b.progress = 1.5), InputError, /progress is 1.5, expected \[0, 1\]/);
    expectRejected((b) => (b.progress = NaN), InputError, /progress is NaN/);
    expectRejected((b) => (b.numClasses = 1), InputError, /numClasses is 1, expected .* >= 2/);
  });
});
