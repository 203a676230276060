// layernorm.wgsl's output for f16 Y (the X of the matmul that follows): each invocation writes the column pairs
// lid, lid + WG, ... of its row as two halves per u32 (the lower column first; cols must be even).
@group(0) @binding(3) var<storage, read_write> Y: array<u32>;

fn write_row(src: u32, dst: u32, mean: f32, inv_std: f32, lid: u32) {
  for (var c2 = lid; c2 < p.cols / 2u; c2 += WG) {
    let c = 2u * c2;
    let a = (X[src + c] - mean) * inv_std * gain[c] + shift[c];
    let b = (X[src + c + 1u] - mean) * inv_std * gain[c + 1u] + shift[c + 1u];
    Y[dst / 2u + c2] = pack2x16float(vec2<f32>(a, b));
  }
}
