/** The CPU reference of both attention kernels (plain softmax, not online). Written for clarity, accumulating in float64; the tests and the kernel ladder check the WGSL against it. */

/** Multi-head attention from packed qkv [B·T, 3W] to [B·T, W], as nn.MultiheadAttention before out_proj. */
export function attentionRef(
  qkv: Float32Array,
  B: number,
  T: number,
  heads: number,
  D: number,
  causal: boolean,
): Float32Array {
  const W = heads * D;
  const out = new Float32Array(B * T * W);
  const scores = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < T; i++) {
        const q = (b * T + i) * 3 * W + h * D;
        const n = causal ? i + 1 : T;
        let max = -Infinity;
        for (let j = 0; j < n; j++) {
          const k = (b * T + j) * 3 * W + W + h * D;
          let s = 0;
          for (let d = 0; d < D; d++) s += qkv[q + d]! * qkv[k + d]!;
          scores[j] = s / Math.sqrt(D);
          max = Math.max(max, scores[j]!);
        }
        let sum = 0;
        for (let j = 0; j < n; j++) {
          scores[j] = Math.exp(scores[j]! - max);
          sum += scores[j]!;
        }
        for (let d = 0; d < D; d++) {
          let acc = 0;
          for (let j = 0; j < n; j++) acc += scores[j]! * qkv[(b * T + j) * 3 * W + 2 * W + h * D + d]!;
          out[(b * T + i) * W + h * D + d] = acc / sum;
        }
      }
    }
  }
  return out;
}
