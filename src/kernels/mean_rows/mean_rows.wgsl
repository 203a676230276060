// Y[b, :] = mean of X[b·T + t, :] over t in [first, T): open_clip's avg pool over the patch tokens
// (first = 1 leaves out the class token). Summed in token order, then divided, as torch's mean.

struct Params { B: u32, T: u32, width: u32, first: u32 }

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
  let c = gid.x;
  let b = wg.y;
  if (c >= p.width || b >= p.B) { return; }
  var sum = 0.0;
  for (var t = p.first; t < p.T; t++) {
    sum += X[(b * p.T + t) * p.width + c];
  }
  Y[b * p.width + c] = sum / f32(p.T - p.first);
}
