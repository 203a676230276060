// subgroup_tile.wgsl's store of one lane's output for f16 Y. Output columns are spread over lanes (lane l owns
// col0 + l + LANES·j, col0 even), so an even lane's neighbour holds the next column: subgroupShuffleXor hands
// it over and the even lane writes the pair. The shuffle sits outside the column test so every lane takes part.
fn store_y(acc: f32, row: u32, col: u32, lane: u32) {
  let next = subgroupShuffleXor(acc, 1u);
  if ((lane & 1u) == 0u && col < p.N) { store_pair(acc, next, row, col); }
}
