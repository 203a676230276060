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

/**
 * Rows under a header, indented two spaces, each column as wide as its widest cell: text columns
 * left-aligned, number columns (`numeric[j]`) right-aligned, so signs and widths never push a column out of line.
 */
export function alignedTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  numeric: readonly boolean[],
): string {
  const widths = header.map((h, j) => Math.max(h.length, ...rows.map((r) => r[j]!.length)));
  const line = (cells: readonly string[]): string =>
    `  ${cells.map((c, j) => (numeric[j] ? c.padStart(widths[j]!) : j === cells.length - 1 ? c : c.padEnd(widths[j]!))).join('  ')}`.trimEnd() +
    '\n';
  return line(header) + rows.map(line).join('');
}

export const percent = (p: number): string => `${(100 * p).toFixed(2)}%`;
