/** The CPU reference of both layernorm kernels (two passes, so a large mean costs no precision). Written for clarity, accumulating in float64; the tests and the kernel ladder check the WGSL against it. */

export function layerNormRef(
  x: Float32Array,
  gain: Float32Array,
  shift: Float32Array,
  rows: number,
  cols: number,
  eps = 1e-5,
): Float32Array {
  const y = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let c = 0; c < cols; c++) mean += x[r * cols + c]!;
    mean /= cols;
    let v = 0;
    for (let c = 0; c < cols; c++) v += (x[r * cols + c]! - mean) ** 2;
    const inv = 1 / Math.sqrt(v / cols + eps);
    for (let c = 0; c < cols; c++) y[r * cols + c] = (x[r * cols + c]! - mean) * inv * gain[c]! + shift[c]!;
  }
  return y;
}
