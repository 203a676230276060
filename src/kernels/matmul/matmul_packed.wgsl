// Y[M,N] = X[M,K] · W[N,K]ᵀ (+ bias) (-> GELU | QuickGELU) (+= Y): matmul_subgroup.wgsl at (8·ROWS)×24 (one 8-lane
// subgroup per workgroup, X rows spread by subgroupBroadcast; read its notes first) with W pre-packed at upload (packMatmulWeights in src/kernels/index.ts) as [⌈N/24⌉][K/4][24] vec4 blocks:
// the 24 W rows of a column tile sit side by side for each 4 values of K, rows past N are zero.
// One base index per lane (tile, lane) replaces three clamped row bases, and the 24 rows a tile reads
// per step share cache lines. Weights are f16, read as vec2<u32> (each u32 two halves along K,
// unpack2x16float): two 32-bit loads per 4 weights instead of four 16-bit ones. On llvmpipe (every
// lane's load a scalar load with a bounds check) the two together measured 8-24 % faster than
// matmul_subgroup.wgsl with f16 weights; each alone, or packing f32 weights, gave no steady gain
// (bench/README.md, v6).
// X rows past M are clamped on load; rows/columns past M/N are skipped on store. K must be a multiple of 4.
enable subgroups;
//!include epilogue.wgsl
//!include subgroup_tile.wgsl

//!include matmul_io.wgsl
//!include matmul_x_{{X_TYPE}}.wgsl
//!include matmul_y_{{Y_TYPE}}.wgsl
@group(0) @binding(1) var<storage, read> W: array<vec2<u32>>;

const LANES = {{LANES}}u;  // 8: the packing's tile; one subgroup's lanes or half of them
const ROWS = {{ROWS}}u;  // X rows loaded per lane (1-3, fewer for small M); the tile has LANES·ROWS rows
const COLS = 3u;  // W rows (output columns) per lane; the tile has LANES·COLS columns, as packed

// Four f16 weights along K (two per u32, the lower K first) in f32.
fn widen(w: vec2<u32>) -> vec4<f32> { return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)); }

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
  let row0 = wg.y * LANES * ROWS;
  let col0 = wg.x * LANES * COLS;
  var xr: array<u32, ROWS>;
  for (var i = 0u; i < ROWS; i++) { xr[i] = min(row0 + lane + LANES * i, p.M - 1u) * p.K4; }
  // W element (k, lane + 8j) of this column tile's block
  let wbase = wg.x * p.K4 * LANES * COLS + lane;
  // acc[r][j]: tile row r (X row row0 + r), this lane's column col0 + lane + 8j
  var acc: array<array<f32, COLS>, LANES * ROWS>;
  for (var k = 0u; k < p.K4; k++) {
    var a: array<vec4<f32>, ROWS>;
    var b: array<vec4<f32>, COLS>;
    for (var i = 0u; i < ROWS; i++) { a[i] = widen_x(X[xr[i] + k]); }
    for (var j = 0u; j < COLS; j++) { b[j] = widen(W[wbase + k * (LANES * COLS) + LANES * j]); }
    tile_step(&acc, a, b);
  }
  store_tile(&acc, row0, col0, lane);
}
