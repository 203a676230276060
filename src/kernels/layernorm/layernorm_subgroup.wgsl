// LayerNorm as layernorm.wgsl computes it (two passes in f32: mean, then mean of squared deviations;
// row r of Y is X row r · in_row_stride), laid out for llvmpipe (lavapipe), where every storage load with
// a computed address costs a per-lane scalar load with a bounds check:
// - a workgroup is one subgroup of LANES (8, or 4 at llvmpipe's 128 bits) and owns ROWS rows; lane l takes
//   the vec4s l, l + LANES, ... of each row, and the row sums are subgroupAdd (register shuffles): no
//   workgroup memory, no barriers;
// - each gain and shift vec4 is loaded once per ROWS rows.
// The row is read three times (sum, deviations, output) rather than kept in a per-lane register array: an
// array of cols/32 vec4s per row, indexed in loops, took llvmpipe 14-143 s to compile (fully unrolled and
// register-allocated by LLVM), this loop 0.3-0.9 s, and the re-reads hit the cache (bench/README.md,
// "cold start"). The width comes from the uniform, so one pipeline per ROWS serves every width.
// Y is f32, or f16 (Y_TYPE) where a matmul reads it. cols must be a multiple of 4. Rows past the end are clamped on load and skipped on store. Needs subgroups
// of at least LANES lanes (layerNorm() checks that).
enable subgroups;

struct Params { rows: u32, cols: u32, in_row_stride: u32, eps: f32 }

@group(0) @binding(0) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> gain: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> shift: array<vec4<f32>>;
//!include layernorm_y_{{Y_TYPE}}.wgsl
@group(0) @binding(4) var<uniform> p: Params;

const LANES = {{LANES}}u;  // one subgroup: 8 (llvmpipe at 256 and 512 bits) or 4 (at 128)
const ROWS = {{ROWS}}u;

fn lane_sum(v: vec4<f32>) -> f32 {
  return subgroupAdd((v.x + v.y) + (v.z + v.w));
}

@compute @workgroup_size({{LANES}})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
  let row0 = (wg.x + wg.y * 65535u) * ROWS;
  if (row0 >= p.rows) { return; }
  let cols4 = p.cols / 4u;
  let n = f32(p.cols);
  var src: array<u32, ROWS>;
  var mean: array<f32, ROWS>;
  var inv_std: array<f32, ROWS>;
  for (var r = 0u; r < ROWS; r++) {
    src[r] = min(row0 + r, p.rows - 1u) * p.in_row_stride * cols4;
    var s = vec4<f32>(0.0);
    for (var c = lane; c < cols4; c += LANES) { s += X[src[r] + c]; }
    mean[r] = lane_sum(s) / n;
    var q = vec4<f32>(0.0);
    for (var c = lane; c < cols4; c += LANES) {
      let d = X[src[r] + c] - mean[r];
      q += d * d;
    }
    inv_std[r] = 1.0 / sqrt(lane_sum(q) / n + p.eps);
  }
  for (var c = lane; c < cols4; c += LANES) {
    let g = gain[c];
    let b = shift[c];
    for (var r = 0u; r < ROWS; r++) {
      if (row0 + r < p.rows) { Y[(row0 + r) * cols4 + c] = narrow_y((X[src[r] + c] - mean[r]) * inv_std[r] * g + b); }
    }
  }
}
