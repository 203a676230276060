// Multi-head attention as attention.wgsl computes it (packed QKV[B·T, 3·W] → O[B·T, W], online
// softmax, causal flag), laid out like matmul_subgroup.wgsl for llvmpipe, where a storage load with a
// computed address costs a per-lane scalar load and so loads and lane shuffles set the speed:
// - a workgroup is one subgroup of LANES (8 at llvmpipe's 256 and 512 bits, 4 at 128) and owns LANES query
//   rows of one head; lane l loads query row q0 + l (again per key block: keeping it in registers measured the
//   same and spills more);
// - keys go by in blocks of LANES·KEYS (8·3 = 24, or 4·4 = 16), lane l owning keys key0 + l + LANES·j (j < KEYS):
//   scores are a LANES×(LANES·KEYS) matmul tile (each query's vec4 handed to all lanes by subgroupBroadcast,
//   chains of 4 FMAs);
// - softmax statistics of a query are reduced across lanes once per block (subgroupMax/subgroupAdd);
// - for P·V lane l owns output dims [D/LANES·l, D/LANES·(l+1)) of all LANES queries: per key it loads those
//   dims of the value row and takes the key's LANES probabilities from the owning lane.
// Per 8·24 query-key pairs that is ~2.5× fewer loads and ~2× fewer shuffles than keeping queries in lanes
// and broadcasting keys (the kernel this replaced, ~28 % slower; bench/README.md).
// Query rows past T are clamped on load and skipped on store; keys past T are masked like causal ones.
// QKV and O are f32, or f16 (IO_TYPE) between the subgroup matmuls.
// HEAD_DIM must be a multiple of 4·LANES (each lane's share of the dims is whole vec4s); attention() checks.
enable subgroups;

struct Params { T: u32, W: u32, causal: u32, scale: f32 }

@group(0) @binding(2) var<uniform> p: Params;
//!include attention_io_{{IO_TYPE}}.wgsl

const LANES = {{LANES}}u;
const D4 = {{HEAD_DIM}}u / 4u;  // vec4s per head row
const KEYS = {{KEYS}}u;          // keys per lane per block; a block has LANES·KEYS
const OUT4 = D4 / LANES;         // vec4s of the output row each lane owns
const MASKED = -3.0e38;          // score of a masked key: exp(MASKED − max) is 0

//!include attention_lanes_{{LANES}}.wgsl

// s[i][j] += q_i · k_j over 4 dims, q_i being lane i's query vec4 (a chain of 4 FMAs per score).
fn score_step(s: ptr<function, array<array<f32, KEYS>, LANES>>, q: vec4<f32>, k: array<vec4<f32>, KEYS>) {
  let b = broadcast_queries(q);
  for (var i = 0u; i < LANES; i++) {
    for (var j = 0u; j < KEYS; j++) {
      (*s)[i][j] = fma(b[i].w, k[j].w, fma(b[i].z, k[j].z, fma(b[i].y, k[j].y, fma(b[i].x, k[j].x, (*s)[i][j]))));
    }
  }
}

// acc[i][t] += P[i][key c + LANES·j] · v[t] for the LANES queries i, the probabilities coming from lane c.
fn value_step(acc: ptr<function, array<array<vec4<f32>, OUT4>, LANES>>, s: array<f32, LANES>, v: array<vec4<f32>, OUT4>) {
  for (var i = 0u; i < LANES; i++) {
    for (var t = 0u; t < OUT4; t++) { (*acc)[i][t] = fma(vec4<f32>(s[i]), v[t], (*acc)[i][t]); }
  }
}

@compute @workgroup_size({{LANES}})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
  let head = wg.y;
  let batch = wg.z;
  let q0 = wg.x * LANES;
  let W4 = p.W / 4u;
  let stride = 3u * W4;
  let base = batch * p.T * stride + head * D4;
  let causal = p.causal != 0u;

  let q_at = base + min(q0 + lane, p.T - 1u) * stride;  // this lane's query row q0 + lane

  var acc: array<array<vec4<f32>, OUT4>, LANES>;
  var m: array<f32, LANES>;  // running max and sum of query q0 + i, the same in every lane
  var l: array<f32, LANES>;
  for (var i = 0u; i < LANES; i++) { m[i] = MASKED; }

  // Causal rows of this workgroup see no key past its last row.
  let n_keys = select(p.T, min(p.T, q0 + LANES), causal);
  for (var key0 = 0u; key0 < n_keys; key0 += LANES * KEYS) {
    var k_at: array<u32, KEYS>;
    for (var j = 0u; j < KEYS; j++) { k_at[j] = base + min(key0 + lane + LANES * j, p.T - 1u) * stride + W4; }
    var s: array<array<f32, KEYS>, LANES>;
    for (var i = 0u; i < LANES; i++) { s[i] = array<f32, KEYS>(); }
    for (var d = 0u; d < D4; d++) {
      var k: array<vec4<f32>, KEYS>;
      for (var j = 0u; j < KEYS; j++) { k[j] = widen_qkv(QKV[k_at[j] + d]); }
      score_step(&s, widen_qkv(QKV[q_at + d]), k);
    }
    for (var i = 0u; i < LANES; i++) {
      var block_max = MASKED;
      for (var j = 0u; j < KEYS; j++) {
        let key = key0 + lane + LANES * j;
        s[i][j] = select(s[i][j] * p.scale, MASKED, key >= p.T || (causal && key > q0 + i));
        block_max = max(block_max, s[i][j]);
      }
      let new_max = max(m[i], subgroupMax(block_max));
      let rescale = exp(m[i] - new_max);
      m[i] = new_max;
      var sum = 0.0;
      for (var j = 0u; j < KEYS; j++) {
        s[i][j] = exp(s[i][j] - new_max);
        sum += s[i][j];
      }
      l[i] = l[i] * rescale + subgroupAdd(sum);
      for (var t = 0u; t < OUT4; t++) { acc[i][t] *= rescale; }
    }
    for (var j = 0u; j < KEYS; j++) {
      // the probabilities of key key0 + c + LANES·j for all LANES queries live in lane c
      var pj: array<f32, LANES>;
      for (var i = 0u; i < LANES; i++) { pj[i] = s[i][j]; }
      for (var c = 0u; c < LANES; c++) {
        let v_at = base + min(key0 + c + LANES * j, p.T - 1u) * stride + 2u * W4 + OUT4 * lane;
        var v: array<vec4<f32>, OUT4>;
        for (var t = 0u; t < OUT4; t++) { v[t] = widen_qkv(QKV[v_at + t]); }
        let pc = probabilities_of_lane(pj, c);
        value_step(&acc, pc, v);
      }
    }
  }
  for (var i = 0u; i < LANES; i++) {
    let query = q0 + i;
    if (query >= p.T) { break; }
    let out_at = (batch * p.T + query) * W4 + head * D4 + OUT4 * lane;
    let inv_l = 1.0 / l[i];
    for (var t = 0u; t < OUT4; t++) { O[out_at + t] = narrow_o(acc[i][t] * inv_l); }
  }
}
