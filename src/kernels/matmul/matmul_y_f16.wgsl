// The subgroup matmul kernels' Y for f16 outputs (the input of a later matmul or of attention): Y[M, N]
// row-major as halves, two per u32 (the lower column first); N must be even. Output columns are spread over
// lanes (lane l owns col0 + l + LANES·j, col0 even), so an even lane's neighbour holds the next column:
// subgroupShuffleXor hands it over, and the even lane writes the pair. The shuffle sits outside the column
// test so every lane of the subgroup takes part.
@group(0) @binding(3) var<storage, read_write> Y: array<u32>;

fn y_before(at: u32) -> f32 {
  let pair = unpack2x16float(Y[at / 2u]);
  return select(pair.x, pair.y, (at & 1u) == 1u);
}

fn store_y(acc: f32, row: u32, col: u32) {
  let at = row * p.N + col;
  let v = epilogue(acc, min(col, p.N - 1u), min(at, p.M * p.N - 1u));
  let next = subgroupShuffleXor(v, 1u);
  if ((col & 1u) == 0u && col < p.N) { Y[at / 2u] = pack2x16float(vec2<f32>(v, next)); }
}
