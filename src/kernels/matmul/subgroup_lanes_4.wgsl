// tile_step for 4-lane subgroups (included by subgroup_tile.wgsl when LANES = 4: llvmpipe at 128
// bits). acc[r][j] (tile row r, this lane's column j) += X row r · W column j over 4 values of k, where
// lane l holds X rows l + 4i in a[i]: every X row is handed to all lanes by subgroupBroadcast, which needs a
// constant lane, hence one spelled-out call per lane.
fn tile_step(acc: ptr<function, array<array<f32, COLS>, LANES * ROWS>>, a: array<vec4<f32>, ROWS>, b: array<vec4<f32>, COLS>) {
  for (var i = 0u; i < ROWS; i++) {
    let r = i * LANES;
    (*acc)[r + 0u] = row_fma((*acc)[r + 0u], subgroupBroadcast(a[i], 0u), b);
    (*acc)[r + 1u] = row_fma((*acc)[r + 1u], subgroupBroadcast(a[i], 1u), b);
    (*acc)[r + 2u] = row_fma((*acc)[r + 2u], subgroupBroadcast(a[i], 2u), b);
    (*acc)[r + 3u] = row_fma((*acc)[r + 3u], subgroupBroadcast(a[i], 3u), b);
  }
}
