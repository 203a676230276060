// The plain reference form of matmul.wgsl for any K (one output per invocation, scalar loads).
// Used when K is not a multiple of 4; the readable baseline of the kernel ladder.
//!include epilogue.wgsl

struct Params { M: u32, N: u32, K: u32, flags: u32 }

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> W: array<{{W_TYPE}}>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
//!include matmul_y_f32.wgsl

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.y;
  let col = gid.x;
  if (row >= p.M || col >= p.N) { return; }
  var acc = 0.0;
  for (var k = 0u; k < p.K; k++) {
    acc = fma(X[row * p.K + k], f32(W[col * p.K + k]), acc);
  }
  let at = row * p.N + col;
  Y[at] = epilogue(acc, col, at);
}
