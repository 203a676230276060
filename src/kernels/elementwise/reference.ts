/** The CPU reference of the activations (elementwise.wgsl, and matmul's fused epilogue). Written for clarity, accumulating in float64; the tests and the kernel ladder check the WGSL against it. */
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

/** elementwise.wgsl: Y = op(X). */
export function elementwiseRef(x: Float32Array, op: 'gelu' | 'quick_gelu'): Float32Array {
  const f = op === 'gelu' ? gelu : quickGelu;
  return x.map((v) => f(v));
}
