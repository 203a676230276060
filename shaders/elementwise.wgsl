// Y = op(X) elementwise: 0 = exact GELU, 1 = QuickGELU, 2 = X + Z (residual add).
//!include activations.wgsl

struct Params { n: u32, op: u32, _pad0: u32, _pad1: u32 }

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> Z: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.n) { return; }
  let x = X[i];
  if (p.op == 0u) { Y[i] = gelu_erf(x); } else if (p.op == 1u) { Y[i] = quick_gelu(x); } else { Y[i] = x + Z[i]; }
}
