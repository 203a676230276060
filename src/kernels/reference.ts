/**
 * Plain CPU references for every kernel, written for clarity (float64 accumulation); the tests and the
 * kernel ladder check the WGSL kernels against these.
 */

/** erf to ~1e-15 (series for small |x|, continued fraction for the tail). */
export function erf(x: number): number {
  const a = Math.abs(x);
  let r: number;
  if (a < 2.5) {
    // Maclaurin series: erf(x) = 2/√π Σ (−1)ⁿ x^(2n+1) / (n! (2n+1))
    let term = a;
    let sum = a;
    for (let n = 1; n < 80; n++) {
      term *= (-a * a) / n;
      sum += term / (2 * n + 1);
      if (Math.abs(term) < 1e-17 * Math.abs(sum)) break;
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // erfc(x) = exp(−x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))) (Lentz-free backward evaluation)
    let f = a;
    for (let n = 60; n >= 1; n--) f = a + n / 2 / f;
    r = 1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  }
  return x < 0 ? -r : r;
}

export const gelu = (x: number): number => 0.5 * x * (1 + erf(x / Math.SQRT2));
export const quickGelu = (x: number): number => x / (1 + Math.exp(-1.702 * x));

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
