// erfc with relative error < 1.2e-7 everywhere (Chebyshev fit, Numerical Recipes "erfcc"); WGSL has no erf.
fn erfc_nonneg(z: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.5 * z);
  let poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return t * exp(-z * z + poly);
}

// torch.nn.GELU(): 0.5·x·(1 + erf(x/√2)) = 0.5·x·erfc(−x/√2); the erfc form keeps the negative tail accurate.
fn gelu_erf(x: f32) -> f32 {
  let z = x * 0.70710678118654752;
  let c = erfc_nonneg(abs(z));
  let e = select(c, 2.0 - c, z > 0.0);  // erfc(-z)
  return 0.5 * x * e;
}

// open_clip QuickGELU: x·sigmoid(1.702x).
fn quick_gelu(x: f32) -> f32 {
  return x / (1.0 + exp(-1.702 * x));
}
