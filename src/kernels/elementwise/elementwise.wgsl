// Y = op(X) elementwise: 0 = exact GELU, 1 = QuickGELU (the matmul epilogue fuses both; this runs them alone).
//!include activations.wgsl

struct Params { n: u32, op: u32, _pad0: u32, _pad1: u32 }

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.n) { return; }
  let x = X[i];
  Y[i] = select(quick_gelu(x), gelu_erf(x), p.op == 0u);
}
