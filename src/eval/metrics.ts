/** Classification metrics over integer labels 0..K-1. */

/** confusion[true][predicted] counts. */
export function confusionMatrix(truth: ArrayLike<number>, predicted: ArrayLike<number>, classes: number): number[][] {
  const matrix = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < truth.length; i++) matrix[truth[i]!]![predicted[i]!]!++;
  return matrix;
}

/** Fraction of rows on the diagonal (0 for an empty matrix). */
export function accuracy(confusion: number[][]): number {
  let right = 0,
    total = 0;
  confusion.forEach((row, k) => {
    row.forEach((count, j) => {
      total += count;
      if (j === k) right += count;
    });
  });
  return total === 0 ? 0 : right / total;
}

/** Per-class recall: right / images of that class; NaN for a class with no images. */
export function recalls(confusion: number[][]): number[] {
  return confusion.map((row, k) => {
    const total = row.reduce((a, b) => a + b, 0);
    return total === 0 ? Number.NaN : row[k]! / total;
  });
}

/** Mean recall over the classes that have images (scikit-learn's balanced_accuracy_score). */
export function balancedAccuracy(confusion: number[][]): number {
  const present = recalls(confusion).filter((r) => !Number.isNaN(r));
  return present.length === 0 ? 0 : present.reduce((a, b) => a + b, 0) / present.length;
}

/** Index of the largest value of each row of a [n, K] row-major matrix (first on ties). */
export function argmaxRows(scores: Float32Array | Float64Array, classes: number): Int32Array {
  const n = scores.length / classes;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let k = 1; k < classes; k++) if (scores[i * classes + k]! > scores[i * classes + best]!) best = k;
    out[i] = best;
  }
  return out;
}
