/** How one command turns an image's embedding into a result, and how a result is printed in each format. */
export interface Scorer<R> {
  /** Unnormalized embeddings (a probe normalizes as it was trained); otherwise unit rows. */
  raw?: boolean;
  score(image: string, row: Float32Array): R;
  table(result: R): string;
  json(result: R): unknown;
  csvHeader: string[];
  csv(result: R): (string | number)[][];
}
