// Fused matmul epilogue, chosen by flag bits so that one pipeline serves every linear layer:
// bit 0: add bias[col]; bits 1-2: activation (1 = exact GELU, 2 = QuickGELU); bit 3: accumulate into Y
// (the residual add: each output is read and written by the same invocation, so it is race-free).
//!include activations.wgsl

fn epilogue(acc: f32, col: u32, at: u32) -> f32 {
  var v = acc;
  if ((p.flags & 1u) != 0u) { v += bias[col]; }
  let act = (p.flags >> 1u) & 3u;
  if (act == 1u) { v = gelu_erf(v); } else if (act == 2u) { v = quick_gelu(v); }
  if ((p.flags & 8u) != 0u) { v += y_before(at); }
  return v;
}
