/** The CPU reference of attention_last_row.wgsl (plain softmax over the allowed keys); the tests check the WGSL against it. */

/** The last query row of each sequence over the keys `allowed` marks ([B·T], 1 = attend): rows [B, W]. */
export function attentionLastRowRef(
  qkv: Float32Array,
  B: number,
  T: number,
  heads: number,
  D: number,
  allowed: Uint32Array,
): Float32Array {
  const W = heads * D;
  const out = new Float32Array(B * W);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < heads; h++) {
      const q = (b * T + T - 1) * 3 * W + h * D;
      const keys = Array.from({ length: T }, (_, j) => j).filter((j) => allowed[b * T + j] !== 0);
      const scores = keys.map((j) => {
        let s = 0;
        for (let d = 0; d < D; d++) s += qkv[q + d]! * qkv[(b * T + j) * 3 * W + W + h * D + d]!;
        return s / Math.sqrt(D);
      });
      const max = Math.max(...scores);
      const weights = scores.map((s) => Math.exp(s - max));
      const sum = weights.reduce((a, w) => a + w, 0);
      for (let d = 0; d < D; d++) {
        let acc = 0;
        keys.forEach((j, i) => {
          acc += weights[i]! * qkv[(b * T + j) * 3 * W + 2 * W + h * D + d]!;
        });
        out[b * W + h * D + d] = acc / sum;
      }
    }
  }
  return out;
}
