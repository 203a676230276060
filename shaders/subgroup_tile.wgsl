// The tile core shared by matmul_subgroup.wgsl and matmul_packed.wgsl (one subgroup of LANES = 8 or 16
// per workgroup): the includer defines LANES, ROWS, COLS, Params p, Y and epilogue().

// One output row's accumulators += s · b[j] over the 4 k values: a chain of 4 FMAs per accumulator.
fn row_fma(acc: array<f32, COLS>, s: vec4<f32>, b: array<vec4<f32>, COLS>) -> array<f32, COLS> {
  var out = acc;
  for (var j = 0u; j < COLS; j++) {
    out[j] = fma(s.w, b[j].w, fma(s.z, b[j].z, fma(s.y, b[j].y, fma(s.x, b[j].x, out[j]))));
  }
  return out;
}

// acc[r][j] (tile row r, this lane's column j) += X row r · W column j over 4 values of k, where lane l
// holds X rows l + LANES·i in a[i]: every X row is handed to all lanes by subgroupBroadcast.
fn tile_step(acc: ptr<function, array<array<f32, COLS>, LANES * ROWS>>, a: array<vec4<f32>, ROWS>, b: array<vec4<f32>, COLS>) {
  for (var i = 0u; i < ROWS; i++) {
    // subgroupBroadcast needs a constant lane, hence the spelled-out calls (lanes 8-15: a constant branch).
    let r = i * LANES;
    (*acc)[r + 0u] = row_fma((*acc)[r + 0u], subgroupBroadcast(a[i], 0u), b);
    (*acc)[r + 1u] = row_fma((*acc)[r + 1u], subgroupBroadcast(a[i], 1u), b);
    (*acc)[r + 2u] = row_fma((*acc)[r + 2u], subgroupBroadcast(a[i], 2u), b);
    (*acc)[r + 3u] = row_fma((*acc)[r + 3u], subgroupBroadcast(a[i], 3u), b);
    (*acc)[r + 4u] = row_fma((*acc)[r + 4u], subgroupBroadcast(a[i], 4u), b);
    (*acc)[r + 5u] = row_fma((*acc)[r + 5u], subgroupBroadcast(a[i], 5u), b);
    (*acc)[r + 6u] = row_fma((*acc)[r + 6u], subgroupBroadcast(a[i], 6u), b);
    (*acc)[r + 7u] = row_fma((*acc)[r + 7u], subgroupBroadcast(a[i], 7u), b);
    if (LANES == 16u) {
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
}

// Writes the tile through the epilogue, skipping rows/columns past M/N.
fn store_tile(acc: ptr<function, array<array<f32, COLS>, LANES * ROWS>>, row0: u32, col0: u32, lane: u32) {
  for (var r = 0u; r < LANES * ROWS; r++) {
    let row = row0 + r;
    if (row >= p.M) { break; }
    for (var j = 0u; j < COLS; j++) {
      let col = col0 + lane + LANES * j;
      if (col < p.N) {
        let at = row * p.N + col;
        Y[at] = epilogue((*acc)[r][j], col, at);
      }
    }
  }
}
