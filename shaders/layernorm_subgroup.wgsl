// LayerNorm as layernorm.wgsl computes it (two passes in f32: mean, then mean of squared deviations;
// row r of Y is X row r · in_row_stride), laid out for llvmpipe (lavapipe), where every storage load with
// a computed address costs a per-lane scalar load with a bounds check:
// - a workgroup is one subgroup of 8 lanes and owns ROWS rows; lane l loads the vec4s l, l + 8, ... of
//   each row once into registers, and the row sums are subgroupAdd (register shuffles): no workgroup
//   memory, no barriers;
// - each gain and shift vec4 is loaded once per ROWS rows.
// COLS4 = cols / 4 (cols must be a multiple of 4); CHUNKS = ceil(COLS4 / 8). Rows past the end are
// clamped on load and skipped on store. Needs subgroups of at least 8 lanes (layerNorm() checks that).
enable subgroups;

struct Params { rows: u32, cols: u32, in_row_stride: u32, eps: f32 }

@group(0) @binding(0) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> gain: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> shift: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> Y: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> p: Params;

const LANES = 8u;
const COLS4 = {{COLS4}}u;
const CHUNKS = {{CHUNKS}}u;
const ROWS = {{ROWS}}u;

fn lane_sum(v: vec4<f32>) -> f32 {
  return subgroupAdd((v.x + v.y) + (v.z + v.w));
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
  let row0 = (wg.x + wg.y * 65535u) * ROWS;
  if (row0 >= p.rows) { return; }
  let n = f32(COLS4 * 4u);
  // Chunks past a row's end stay zero: they add nothing to the sum; the deviation pass masks them.
  var x: array<array<vec4<f32>, CHUNKS>, ROWS>;
  var mean: array<f32, ROWS>;
  var inv_std: array<f32, ROWS>;
  for (var r = 0u; r < ROWS; r++) {
    let src = min(row0 + r, p.rows - 1u) * p.in_row_stride * COLS4;
    var s = vec4<f32>(0.0);
    for (var k = 0u; k < CHUNKS; k++) {
      let c = lane + LANES * k;
      if (c < COLS4) { x[r][k] = X[src + c]; }
      s += x[r][k];
    }
    mean[r] = lane_sum(s) / n;
    var q = vec4<f32>(0.0);
    for (var k = 0u; k < CHUNKS; k++) {
      let d = x[r][k] - mean[r];
      q += select(vec4<f32>(0.0), d * d, lane + LANES * k < COLS4);
    }
    inv_std[r] = 1.0 / sqrt(lane_sum(q) / n + p.eps);
  }
  for (var k = 0u; k < CHUNKS; k++) {
    let c = lane + LANES * k;
    if (c >= COLS4) { break; }
    let g = gain[c];
    let b = shift[c];
    for (var r = 0u; r < ROWS; r++) {
      if (row0 + r < p.rows) { Y[(row0 + r) * COLS4 + c] = (x[r][k] - mean[r]) * inv_std[r] * g + b; }
    }
  }
}
