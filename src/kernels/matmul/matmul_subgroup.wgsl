// Y[M,N] = X[M,K] · W[N,K]ᵀ (+ bias) (-> GELU | QuickGELU) (+= Y), tuned for llvmpipe (lavapipe).
// llvmpipe runs a subgroup as one SIMD vector and a workgroup on one thread; every storage load whose
// address is not a constant is a per-lane scalar load with a bounds check, so loads dominate and the
// kernel is built to do as few as possible per FMA:
// - a workgroup is one subgroup of LANES (8 at llvmpipe's 256 bits, 16 at 512, 4 at 128) and owns a
//   (LANES·ROWS)×(LANES·COLS) output tile; no workgroup memory, no barriers;
// - lane l loads, as vec4 along K, X rows row0 + l + LANES·i (i < ROWS) and W rows col0 + l + LANES·j (j < COLS);
// - every X row is handed to all lanes with subgroupBroadcast from a constant lane (a register shuffle),
//   so per 4 values of K each lane does ROWS + COLS vec4 loads for LANES·ROWS·COLS accumulators
//   (8 lanes, 24×24 tile: 6 loads, 72 accumulators, chains of 4 FMAs per accumulator).
// Rows/columns past M/N are clamped on load and skipped on store. K must be a multiple of 4.
// Needs subgroups of exactly LANES lanes (or more), so that a workgroup of LANES is one subgroup; matmul() checks that.
enable subgroups;
//!include epilogue.wgsl
//!include subgroup_tile.wgsl

//!include matmul_io.wgsl
//!include matmul_x_{{X_TYPE}}.wgsl
//!include matmul_w_{{W_TYPE}}.wgsl
//!include matmul_y_{{Y_TYPE}}.wgsl

const LANES = {{LANES}}u;
const ROWS = {{ROWS}}u;  // X rows loaded per lane; the tile has LANES·ROWS rows
const COLS = {{COLS}}u;  // W rows (output columns) per lane; the tile has LANES·COLS columns

@compute @workgroup_size({{LANES}})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
  let row0 = wg.y * LANES * ROWS;
  let col0 = wg.x * LANES * COLS;
  var xr: array<u32, ROWS>;
  var wr: array<u32, COLS>;
  for (var i = 0u; i < ROWS; i++) { xr[i] = min(row0 + lane + LANES * i, p.M - 1u) * p.K4; }
  for (var j = 0u; j < COLS; j++) { wr[j] = min(col0 + lane + LANES * j, p.N - 1u) * p.K4; }
  // acc[r][j]: tile row r (X row row0 + r), this lane's column col0 + lane + 8j
  var acc: array<array<f32, COLS>, LANES * ROWS>;
  for (var k = 0u; k < p.K4; k++) {
    var a: array<vec4<f32>, ROWS>;
    var b: array<vec4<f32>, COLS>;
    for (var i = 0u; i < ROWS; i++) { a[i] = widen_x(X[xr[i] + k]); }
    for (var j = 0u; j < COLS; j++) { b[j] = widen_w(W[wr[j] + k]); }
    tile_step(&acc, a, b);
  }
  store_tile(&acc, row0, col0, lane);
}
