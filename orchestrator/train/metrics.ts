/**
 * Classification metrics on plain arrays: accuracy, macro-F1, and a confusion matrix.
 */

/** Index of the largest value in each row of a row-major [rows, columns] array. */
export function argmaxRows(values: Float32Array, columns: number): Int32Array {
  const rows = values.length / columns;
  const result = new Int32Array(rows);

  for (let row = 0; row < rows; row++) {
    let best = 0;
    for (let column = 1; column < columns; column++) {
      if (values[row * columns + column] > values[row * columns + best]) best = column;
    }
    result[row] = best;
  }
  return result;
}

/** Fraction of predictions equal to their label. */
export function accuracy(predictions: Int32Array, labels: Int32Array): number {
  if (labels.length === 0) return Number.NaN;
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (predictions[i] === labels[i]) correct++;
  return correct / labels.length;
}

/** confusion[label][prediction] counts. */
export function confusionMatrix(
  predictions: Int32Array,
  labels: Int32Array,
  numClasses: number,
): number[][] {
  const matrix = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < labels.length; i++) matrix[labels[i]][predictions[i]]++;
  return matrix;
}

/**
 * Unweighted mean over classes of F1 = 2 TP / (2 TP + FP + FN). A class that never occurs
 * and is never predicted is left out, as it has no defined F1; one that is predicted but never
 * occurs counts as 0.
 */
export function macroF1(predictions: Int32Array, labels: Int32Array, numClasses: number): number {
  const matrix = confusionMatrix(predictions, labels, numClasses);
  const scores: number[] = [];

  for (let k = 0; k < numClasses; k++) {
    const truePositives = matrix[k][k];
    const actual = matrix[k].reduce((sum, count) => sum + count, 0);
    const predicted = matrix.reduce((sum, row) => sum + row[k], 0);
    if (actual + predicted === 0) continue;
    scores.push((2 * truePositives) / (actual + predicted));
  }

  return scores.length === 0 ? Number.NaN : scores.reduce((a, b) => a + b, 0) / scores.length;
}
