/** The CPU reference of every matmul kernel: Y = X·Wᵀ (+bias) (→activation) (+residual). Written for clarity, accumulating in float64; the tests and the kernel ladder check the WGSL against it. */
import { gelu, quickGelu } from '../elementwise/reference.js';

export function matmulRef(
  x: Float32Array,
  w: Float32Array,
  M: number,
  N: number,
  K: number,
  opts: { bias?: Float32Array; activation?: 'none' | 'gelu' | 'quick_gelu'; residual?: Float32Array } = {},
): Float32Array {
  const y = new Float32Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[m * K + k]! * w[n * K + k]!;
      if (opts.bias) s += opts.bias[n]!;
      if (opts.activation === 'gelu') s = gelu(s);
      else if (opts.activation === 'quick_gelu') s = quickGelu(s);
      if (opts.residual) s += opts.residual[m * N + n]!;
      y[m * N + n] = s;
    }
  }
  return y;
}
