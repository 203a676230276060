// Y[i, :] = X[index[i], :]: picks the EOT row of each prompt (or any chosen rows). Rows are copied as 32-bit
// words (width counts words), so f32 rows and f16 rows (two halves a word) alike are copied bit for bit.

struct Params { rows: u32, width: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<storage, read> X: array<u32>;
@group(0) @binding(1) var<storage, read> index: array<u32>;
@group(0) @binding(2) var<storage, read_write> Y: array<u32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
  let c = gid.x;
  let i = wg.y;
  if (c >= p.width || i >= p.rows) { return; }
  Y[i * p.width + c] = X[index[i] * p.width + c];
}
