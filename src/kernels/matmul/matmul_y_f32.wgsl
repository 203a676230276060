// The matmul kernels' Y for f32 outputs: Y[M, N] row-major. y_before(at) is the value the epilogue's
// accumulate flag adds to; store_pair writes columns col and col + 1 of a row through the epilogue (the second
// only below N).
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

fn y_before(at: u32) -> f32 { return Y[at]; }

fn store_pair(a: f32, b: f32, row: u32, col: u32) {
  let at = row * p.N + col;
  Y[at] = epilogue(a, col, at);
  if (col + 1u < p.N) { Y[at + 1u] = epilogue(b, col + 1u, at + 1u); }
}
