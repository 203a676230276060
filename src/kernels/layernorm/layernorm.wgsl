// LayerNorm over the last dim (eps from params), one workgroup per row, two passes in f32:
// mean first, then the mean of squared deviations (no E[x²]−mean² cancellation).
// Y may be a different row set than X: row r of Y is X row (r · in_stride_rows), so the class token of
// each image can be normalized straight out of the residual stream. Y is f32, or f16 (Y_TYPE, cols even) where a
// matmul reads it.

struct Params { rows: u32, cols: u32, in_row_stride: u32, eps: f32 }

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> gain: array<f32>;
@group(0) @binding(2) var<storage, read> shift: array<f32>;
//!include layernorm_out_{{Y_TYPE}}.wgsl
@group(0) @binding(4) var<uniform> p: Params;

const WG = 64u;
var<workgroup> partial: array<f32, WG>;

fn workgroup_sum(v: f32, lid: u32) -> f32 {
  partial[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { partial[lid] += partial[lid + s]; }
    workgroupBarrier();
  }
  let total = partial[0];
  workgroupBarrier();
  return total;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let row = wg.x + wg.y * 65535u;
  if (row >= p.rows) { return; }
  let lid = lid3.x;
  let src = row * p.in_row_stride * p.cols;
  let dst = row * p.cols;
  var s = 0.0;
  for (var c = lid; c < p.cols; c += WG) { s += X[src + c]; }
  let mean = workgroup_sum(s, lid) / f32(p.cols);
  var q = 0.0;
  for (var c = lid; c < p.cols; c += WG) { let d = X[src + c] - mean; q += d * d; }
  let inv_std = 1.0 / sqrt(workgroup_sum(q, lid) / f32(p.cols) + p.eps);
  write_row(src, dst, mean, inv_std, lid);
}
