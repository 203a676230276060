// Multi-head scaled-dot-product attention from the packed in_proj output QKV[B·T, 3·W]
// (q | k | v, each W = heads·HEAD_DIM wide) into O[B·T, W] with heads side by side, as
// nn.MultiheadAttention computes before out_proj. One invocation per query row keeps the whole
// output row in registers and runs an online (streaming) softmax over the keys, so scores are never
// stored and any sequence length works. The causal flag limits row i to keys 0..i (text tower).

struct Params { T: u32, W: u32, causal: u32, scale: f32 }

//!include attention_io_{{IO_TYPE}}.wgsl
@group(0) @binding(2) var<uniform> p: Params;

const D4 = {{HEAD_DIM}}u / 4u;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
  let i = gid.x;
  let head = wg.y;
  let batch = wg.z;
  if (i >= p.T) { return; }
  let W4 = p.W / 4u;
  let stride = 3u * W4;
  let base = batch * p.T * stride + head * D4;
  var q: array<vec4<f32>, D4>;
  for (var d = 0u; d < D4; d++) { q[d] = widen_qkv(QKV[base + i * stride + d]) * p.scale; }
  var acc: array<vec4<f32>, D4>;
  var m = -3.0e38;
  var l = 0.0;
  let n_keys = select(p.T, i + 1u, p.causal != 0u);
  for (var j = 0u; j < n_keys; j++) {
    let k_at = base + j * stride + W4;
    var s = 0.0;
    for (var d = 0u; d < D4; d++) { s += dot(q[d], widen_qkv(QKV[k_at + d])); }
    if (s > m) {
      let r = exp(m - s);
      l *= r;
      for (var d = 0u; d < D4; d++) { acc[d] *= r; }
      m = s;
    }
    let e = exp(s - m);
    l += e;
    let v_at = k_at + W4;
    for (var d = 0u; d < D4; d++) { acc[d] += e * widen_qkv(QKV[v_at + d]); }
  }
  let out_at = (batch * p.T + i) * W4 + head * D4;
  let inv_l = 1.0 / l;
  for (var d = 0u; d < D4; d++) { O[out_at + d] = narrow_o(acc[d] * inv_l); }
}
