// subgroup_tile.wgsl's store of one lane's output for f16 Y. Output columns are spread over lanes (lane l owns
// col0 + l + LANES·j, col0 even), so an even lane's neighbour holds the next column. Every lane runs the
// epilogue on its own column, then subgroupShuffleXor hands the odd lane's result over and the even lane writes
// the pair. (Running both columns' epilogues in the even lane, as store_pair does, made LLVM take 5× longer to
// compile the tile: 44 s against 9 s for the 32×48 tile on a first run; bench/README.md, seventh pass.)
// Columns past N (a whole pair, N being even) run the epilogue on clamped reads and are not written; the
// shuffle sits outside the column test so every lane takes part.
fn store_y(acc: f32, row: u32, col: u32, lane: u32) {
  let at = row * p.N + col;
  let value = epilogue(acc, col, at);
  let next = subgroupShuffleXor(value, 1u);
  if ((lane & 1u) == 0u && col < p.N) { store_halves(at, value, next); }
}
