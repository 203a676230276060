// Vision token sequence: Y[b, 0] = class_embedding + pos[0]; Y[b, t] = patch_embed[b, t−1] + pos[t].

struct Params { B: u32, T: u32, width: u32, _p: u32 }

@group(0) @binding(0) var<storage, read> patch_embed: array<f32>;
@group(0) @binding(1) var<storage, read> class_embedding: array<f32>;
@group(0) @binding(2) var<storage, read> pos: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
  let c = gid.x;
  let r = wg.y + wg.z * 65535u;  // b·T + t
  if (c >= p.width || r >= p.B * p.T) { return; }
  let b = r / p.T;
  let t = r % p.T;
  var v = pos[t * p.width + c];
  if (t == 0u) {
    v += class_embedding[c];
  } else {
    v += patch_embed[(b * (p.T - 1u) + t - 1u) * p.width + c];
  }
  Y[r * p.width + c] = v;
}
