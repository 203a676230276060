/** The CPU reference of gather_rows.wgsl; the tests check the WGSL against it. */

/** Y[i] = X[index[i]] for rows of `width` floats. */
export function gatherRowsRef(x: Float32Array, index: Uint32Array, width: number): Float32Array {
  const y = new Float32Array(index.length * width);
  index.forEach((row, i) => {
    y.set(x.subarray(row * width, (row + 1) * width), i * width);
  });
  return y;
}
