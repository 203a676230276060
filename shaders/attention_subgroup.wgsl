// Multi-head attention as attention.wgsl computes it (packed QKV[B·T, 3·W] → O[B·T, W], online
// softmax, causal flag), laid out for llvmpipe (lavapipe), where every storage load with a computed
// address costs a per-lane scalar load with a bounds check, so loads dominate and each key/value must be
// loaded as few times as possible:
// - a workgroup is one subgroup of 8 lanes and owns 8·ROWS query rows of one head; lane l keeps rows
//   q0 + l + 8i (i < ROWS), their scaled q and their output accumulators in registers;
// - keys go by in blocks of 8: lane l loads key row key0 + l and value row key0 + l once, and every lane
//   gets each of the 8 rows by subgroupBroadcast from a constant lane (a register shuffle), so a key/value
//   row is loaded once per 8·ROWS queries instead of once per query;
// - softmax statistics belong to a lane's own rows, so no cross-lane reductions and no barriers;
// - scores are summed as vec4 FMAs and reduced once per key (cheaper than a dot per vec4).
// Query rows past T are clamped on load and skipped on store; keys past T are masked like causal ones.
// Needs subgroups of at least 8 lanes (attention() checks that). Everything per lane is unrolled over
// ROWS·HEAD_DIM, so llvmpipe's compile time grows with it (seconds at 2×64).
enable subgroups;

struct Params { T: u32, W: u32, causal: u32, scale: f32 }

@group(0) @binding(0) var<storage, read> QKV: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> O: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> p: Params;

const LANES = 8u;
const D4 = {{HEAD_DIM}}u / 4u;
const ROWS = {{ROWS}}u;  // query rows per lane; the workgroup has LANES·ROWS
const MASKED = -3.0e38;  // score of a masked key: exp(MASKED − max) is 0

// The 8 lanes' values of v, as an array indexed by lane (subgroupBroadcast needs a constant lane).
fn from_lanes(v: vec4<f32>) -> array<vec4<f32>, LANES> {
  return array<vec4<f32>, LANES>(
    subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u), subgroupBroadcast(v, 3u),
    subgroupBroadcast(v, 4u), subgroupBroadcast(v, 5u), subgroupBroadcast(v, 6u), subgroupBroadcast(v, 7u));
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
  let head = wg.y;
  let batch = wg.z;
  let q0 = wg.x * LANES * ROWS;
  let W4 = p.W / 4u;
  let stride = 3u * W4;
  let base = batch * p.T * stride + head * D4;
  let causal = p.causal != 0u;

  var query: array<u32, ROWS>;
  var q: array<array<vec4<f32>, D4>, ROWS>;
  for (var i = 0u; i < ROWS; i++) {
    query[i] = q0 + lane + LANES * i;
    let at = base + min(query[i], p.T - 1u) * stride;
    for (var d = 0u; d < D4; d++) { q[i][d] = QKV[at + d] * p.scale; }
  }
  var acc: array<array<vec4<f32>, D4>, ROWS>;
  var m: array<f32, ROWS>;
  var l: array<f32, ROWS>;
  for (var i = 0u; i < ROWS; i++) { m[i] = MASKED; }

  // Causal rows of this workgroup see no key past its last row.
  let n_keys = select(p.T, min(p.T, q0 + LANES * ROWS), causal);
  for (var key0 = 0u; key0 < n_keys; key0 += LANES) {
    let k_at = base + min(key0 + lane, p.T - 1u) * stride + W4;
    // s[i][c]: this lane's row i against key key0 + c, summed as vec4 FMAs and reduced at the end
    // (zeroed explicitly: on lavapipe through Dawn a var declared in a loop without an initializer was
    // seen to keep the previous block's values)
    var s4: array<array<vec4<f32>, LANES>, ROWS>;
    for (var i = 0u; i < ROWS; i++) { s4[i] = array<vec4<f32>, LANES>(); }
    for (var d = 0u; d < D4; d++) {
      let k = from_lanes(QKV[k_at + d]);
      for (var i = 0u; i < ROWS; i++) {
        for (var c = 0u; c < LANES; c++) { s4[i][c] = fma(q[i][d], k[c], s4[i][c]); }
      }
    }
    var s: array<array<f32, LANES>, ROWS>;
    for (var i = 0u; i < ROWS; i++) {
      for (var c = 0u; c < LANES; c++) { s[i][c] = (s4[i][c].x + s4[i][c].y) + (s4[i][c].z + s4[i][c].w); }
    }
    for (var i = 0u; i < ROWS; i++) {
      var block_max = m[i];
      for (var c = 0u; c < LANES; c++) {
        let key = key0 + c;
        s[i][c] = select(s[i][c], MASKED, key >= p.T || (causal && key > query[i]));
        block_max = max(block_max, s[i][c]);
      }
      let rescale = exp(m[i] - block_max);
      m[i] = block_max;
      var sum = 0.0;
      for (var c = 0u; c < LANES; c++) {
        s[i][c] = exp(s[i][c] - block_max);
        sum += s[i][c];
      }
      l[i] = l[i] * rescale + sum;
      for (var d = 0u; d < D4; d++) { acc[i][d] *= rescale; }
    }
    let v_at = k_at + W4;
    for (var d = 0u; d < D4; d++) {
      let v = from_lanes(QKV[v_at + d]);
      for (var i = 0u; i < ROWS; i++) {
        for (var c = 0u; c < LANES; c++) { acc[i][d] = fma(vec4<f32>(s[i][c]), v[c], acc[i][d]); }
      }
    }
  }
  for (var i = 0u; i < ROWS; i++) {
    if (query[i] >= p.T) { break; }
    let out_at = (batch * p.T + query[i]) * W4 + head * D4;
    let inv_l = 1.0 / l[i];
    for (var d = 0u; d < D4; d++) { O[out_at + d] = acc[i][d] * inv_l; }
  }
}
