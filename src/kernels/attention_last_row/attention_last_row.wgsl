// The last query row of each sequence attends only to the keys `allowed` marks: CoCa's appended class token in
// open_clip's TextTransformer (key 0, and key j when token j−1 is not padding). Overwrites that row of O, which
// the causal attention kernel wrote first; the other rows never see the last key under the causal mask.
// One invocation per output dim of one head: each recomputes the row's scores (T·D work, a few rows per forward).

struct Params { T: u32, W: u32, D: u32, scale: f32 }

@group(0) @binding(0) var<storage, read> QKV: array<f32>;
@group(0) @binding(1) var<storage, read> allowed: array<u32>;
@group(0) @binding(2) var<storage, read_write> O: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
  let d = gid.x;
  let h = wg.y;
  let b = wg.z;
  if (d >= p.D) { return; }
  let row = b * p.T + p.T - 1u;
  let q = row * 3u * p.W + h * p.D;
  var m = -3.4e38;
  var l = 0.0;
  var acc = 0.0;
  for (var j = 0u; j < p.T; j++) {
    if (allowed[b * p.T + j] == 0u) { continue; }
    let k = (b * p.T + j) * 3u * p.W + p.W + h * p.D;
    var s = 0.0;
    for (var e = 0u; e < p.D; e++) {
      s += QKV[q + e] * QKV[k + e];
    }
    s *= p.scale;
    let m_new = max(m, s);
    let c = exp(m - m_new);
    let w = exp(s - m_new);
    l = l * c + w;
    acc = acc * c + w * QKV[k + p.W + d];
    m = m_new;
  }
  O[row * p.W + h * p.D + d] = acc / l;
}
