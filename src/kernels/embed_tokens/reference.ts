/** The CPU reference of embed_tokens.wgsl; the tests check the WGSL against it. */

/** Y[r] = table[ids[r]] + pos[r mod T] for `width`-wide rows (the table whole, not in chunks). */
export function embedTokensRef(
  ids: Uint32Array,
  table: Float32Array,
  pos: Float32Array,
  seq: number,
  width: number,
): Float32Array {
  const y = new Float32Array(ids.length * width);
  ids.forEach((id, r) => {
    for (let c = 0; c < width; c++) y[r * width + c] = table[id * width + c]! + pos[(r % seq) * width + c]!;
  });
  return y;
}
