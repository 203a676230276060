// layernorm.wgsl's output for f32 Y: each invocation writes the columns lid, lid + WG, ... of its row.
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

fn write_row(src: u32, dst: u32, mean: f32, inv_std: f32, lid: u32) {
  for (var c = lid; c < p.cols; c += WG) {
    Y[dst + c] = (X[src + c] - mean) * inv_std * gain[c] + shift[c];
  }
}
