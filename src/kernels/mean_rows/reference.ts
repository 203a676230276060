/** The CPU reference of mean_rows.wgsl; the tests check the WGSL against it. */

/** The mean of rows [first, T) of each of B blocks of T rows of `width` floats: [B, width]. */
export function meanRowsRef(x: Float32Array, B: number, T: number, width: number, first: number): Float32Array {
  const y = new Float32Array(B * width);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < width; c++) {
      let s = 0;
      for (let t = first; t < T; t++) s += x[(b * T + t) * width + c]!;
      y[b * width + c] = s / (T - first);
    }
  }
  return y;
}
