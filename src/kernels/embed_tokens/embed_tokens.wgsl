// Text input embedding: Y[r, :] = table[ids[r] − row_offset, :] + pos[r mod T, :] for rows whose id lies in
// this table chunk [row_offset, row_offset + chunk_rows). A token table larger than one storage binding
// (ViT-L/14: 49408×768 fp32 = 151.8 MB > 128 MiB) is split into chunks, one dispatch each; every row is
// written by exactly one of them.

struct Params { rows: u32, T: u32, width: u32, row_offset: u32, chunk_rows: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<storage, read> ids: array<u32>;
@group(0) @binding(1) var<storage, read> table: array<{{W_TYPE}}>;
@group(0) @binding(2) var<storage, read> pos: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
  let r = wg.y;
  let c = gid.x;
  if (r >= p.rows || c >= p.width) { return; }
  let id = ids[r];
  if (id < p.row_offset || id >= p.row_offset + p.chunk_rows) { return; }
  let t = r % p.T;
  Y[r * p.width + c] = f32(table[(id - p.row_offset) * p.width + c]) + pos[t * p.width + c];
}
