// tile_step for 16-lane subgroups (included by subgroup_tile.wgsl when LANES = 16).
// acc[r][j] (tile row r, this lane's column j) += X row r · W column j over 4 values of k, where lane l
// holds X rows l + 16i in a[i]: every X row is handed to all lanes by subgroupBroadcast, which needs a
// constant lane, hence one spelled-out call per lane.
fn tile_step(acc: ptr<function, array<array<f32, COLS>, LANES * ROWS>>, a: array<vec4<f32>, ROWS>, b: array<vec4<f32>, COLS>) {
  for (var i = 0u; i < ROWS; i++) {
    let r = i * LANES;
    (*acc)[r + 0u] = row_fma((*acc)[r + 0u], subgroupBroadcast(a[i], 0u), b);
    (*acc)[r + 1u] = row_fma((*acc)[r + 1u], subgroupBroadcast(a[i], 1u), b);
    (*acc)[r + 2u] = row_fma((*acc)[r + 2u], subgroupBroadcast(a[i], 2u), b);
    (*acc)[r + 3u] = row_fma((*acc)[r + 3u], subgroupBroadcast(a[i], 3u), b);
    (*acc)[r + 4u] = row_fma((*acc)[r + 4u], subgroupBroadcast(a[i], 4u), b);
    (*acc)[r + 5u] = row_fma((*acc)[r + 5u], subgroupBroadcast(a[i], 5u), b);
    (*acc)[r + 6u] = row_fma((*acc)[r + 6u], subgroupBroadcast(a[i], 6u), b);
    (*acc)[r + 7u] = row_fma((*acc)[r + 7u], subgroupBroadcast(a[i], 7u), b);
    (*acc)[r + 8u] = row_fma((*acc)[r + 8u], subgroupBroadcast(a[i], 8u), b);
    (*acc)[r + 9u] = row_fma((*acc)[r + 9u], subgroupBroadcast(a[i], 9u), b);
    (*acc)[r + 10u] = row_fma((*acc)[r + 10u], subgroupBroadcast(a[i], 10u), b);
    (*acc)[r + 11u] = row_fma((*acc)[r + 11u], subgroupBroadcast(a[i], 11u), b);
    (*acc)[r + 12u] = row_fma((*acc)[r + 12u], subgroupBroadcast(a[i], 12u), b);
    (*acc)[r + 13u] = row_fma((*acc)[r + 13u], subgroupBroadcast(a[i], 13u), b);
    (*acc)[r + 14u] = row_fma((*acc)[r + 14u], subgroupBroadcast(a[i], 14u), b);
    (*acc)[r + 15u] = row_fma((*acc)[r + 15u], subgroupBroadcast(a[i], 15u), b);
  }
}
