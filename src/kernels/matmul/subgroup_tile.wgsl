// The tile core shared by matmul_subgroup.wgsl and matmul_packed.wgsl (one subgroup of LANES = 4, 8 or 16
// per workgroup): the includer defines LANES, ROWS, COLS, Params p and store_y(). tile_step comes from
// subgroup_lanes_4.wgsl, _8.wgsl or _16.wgsl, picked by the LANES define: a dead `if (LANES == 16u)` branch here cost
// llvmpipe ~1.7x on the whole image tower (bench/README.md), so each width gets only its own calls.
//!include subgroup_lanes_{{LANES}}.wgsl
//!include subgroup_store_{{Y_TYPE}}.wgsl

// One output row's accumulators += s · b[j] over the 4 k values: a chain of 4 FMAs per accumulator.
fn row_fma(acc: array<f32, COLS>, s: vec4<f32>, b: array<vec4<f32>, COLS>) -> array<f32, COLS> {
  var out = acc;
  for (var j = 0u; j < COLS; j++) {
    out[j] = fma(s.w, b[j].w, fma(s.z, b[j].z, fma(s.y, b[j].y, fma(s.x, b[j].x, out[j]))));
  }
  return out;
}

// Writes the tile through the epilogue (store_y, from subgroup_store_f32/f16.wgsl), skipping rows/columns past M/N.
// Every lane of the subgroup reaches each store_y: the row test is the same in all lanes.
fn store_tile(acc: ptr<function, array<array<f32, COLS>, LANES * ROWS>>, row0: u32, col0: u32, lane: u32) {
  for (var r = 0u; r < LANES * ROWS; r++) {
    let row = row0 + r;
    if (row >= p.M) { break; }
    for (var j = 0u; j < COLS; j++) { store_y((*acc)[r][j], row, col0 + lane + LANES * j, lane); }
  }
}
