// The matmul kernels' Y for f32 outputs: Y[M, N] row-major. y_before(at) is the value the epilogue's
// accumulate flag adds to; store_y is subgroup_tile.wgsl's store of one lane's output.
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

fn y_before(at: u32) -> f32 { return Y[at]; }

fn store_y(acc: f32, row: u32, col: u32) {
  if (col < p.N) {
    let at = row * p.N + col;
    Y[at] = epilogue(acc, col, at);
  }
}
