// The matmul kernels' Y for f16 outputs (the input of a later matmul or of attention): Y[M, N] row-major as
// halves, two per u32 (the lower column first), rounded to nearest even; N must be even. store_pair writes an
// even column and the next one as one u32 through the epilogue, store_halves two finished values; y_before
// reads one half back for the accumulate flag.
@group(0) @binding(3) var<storage, read_write> Y: array<u32>;

fn y_before(at: u32) -> f32 {
  let pair = unpack2x16float(Y[at / 2u]);
  return select(pair.x, pair.y, (at & 1u) == 1u);
}

fn store_pair(a: f32, b: f32, row: u32, col: u32) {
  let at = row * p.N + col;
  Y[at / 2u] = pack2x16float(vec2<f32>(epilogue(a, col, at), epilogue(b, col + 1u, at + 1u)));
}

fn store_halves(at: u32, even: f32, odd: f32) {
  Y[at / 2u] = pack2x16float(vec2<f32>(even, odd));
}
