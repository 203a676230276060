// subgroup_tile.wgsl's store of one lane's output for f32 Y: each lane writes its own column.
fn store_y(acc: f32, row: u32, col: u32, lane: u32) {
  if (col < p.N) {
    let at = row * p.N + col;
    Y[at] = epilogue(acc, col, at);
  }
}
