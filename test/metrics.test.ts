import { accuracy, argmaxRows, confusionMatrix, macroF1 } from '../orchestrator/train/metrics';

describe('metrics', () => {
  const labels = Int32Array.from([0, 0, 1, 1, 2, 2]);
  const predictions = Int32Array.from([0, 1, 1, 1, 2, 0]);

  it('argmaxRows picks the first of equal maxima', () => {
    const rows = Float32Array.from([0.1, 0.7, 0.2, 0.5, 0.5, 0.0]);
    expect(Array.from(argmaxRows(rows, 3))).toEqual([1, 0]);
  });

  it('accuracy counts matches: 4 of 6', () => {
    expect(accuracy(predictions, labels)).toBeCloseTo(4 / 6, 10);
  });

  it('confusion matrix is indexed [label][prediction]', () => {
    expect(confusionMatrix(predictions, labels, 3)).toEqual([
      [1, 1, 0],
      [0, 2, 0],
      [1, 0, 1],
    ]);
  });

  it('macro-F1 matches a hand computation', () => {
    // class 0: TP 1, 2 actual, 2 predicted -> 2/4 = 0.5
    // class 1: TP 2, 2 actual, 3 predicted -> 4/5 = 0.8
    // class 2: TP 1, 2 actual, 1 predicted -> 2/3
    const expected = (0.5 + 0.8 + 2 / 3) / 3;
    expect(macroF1(predictions, labels, 3)).toBeCloseTo(expected, 10);
  });

  it('macro-F1 leaves out a class that neither occurs nor is predicted', () => {
    expect(macroF1(Int32Array.from([0, 1]), Int32Array.from([0, 1]), 5)).toBe(1);
  });
});
