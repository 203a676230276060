// Y[M,N] = X[M,K] · W[N,K]ᵀ (+ bias) (-> GELU | QuickGELU) (+= Y), W in nn.Linear [out, in] layout:
// the classic workgroup-memory tiling that GPUs with real SIMT hardware want (lavapipe does not; see
// matmul_subgroup.wgsl). A workgroup of 16×16 invocations owns a 64×64 output tile; per step of 16 along
// K it stages the 64×16 slices of X and W in workgroup memory (one vec4 load per invocation each, stored
// k-major as scalars), then each invocation accumulates its 4×4 block with vec4 FMAs. Rows/columns past M/N are clamped on load and skipped on store; K must be a multiple of 4, and
// the last step's values past K are zero.
//!include epilogue.wgsl

//!include matmul_io.wgsl
//!include matmul_x_{{X_TYPE}}.wgsl
//!include matmul_y_{{Y_TYPE}}.wgsl
@group(0) @binding(1) var<storage, read> W: array<vec4<{{W_TYPE}}>>;

const TILE = 64u;       // output rows and columns per workgroup
const STEP4 = 4u;       // K values per step, in vec4s (16 floats)

// xs[k][r]: the step's X value at k for tile row r; ws likewise for W rows (output columns). Scalars, not
// vec4s: invocations store single components, and a component store may touch its whole vector.
var<workgroup> xs: array<array<f32, TILE>, 16>;
var<workgroup> ws: array<array<f32, TILE>, 16>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
  let row0 = wg.y * TILE;
  let col0 = wg.x * TILE;
  // Staging: invocation t loads vec4 number t % 4 of row t / 4 of the X slice and of the W slice.
  let load_row = t / STEP4;
  let load_k4 = t % STEP4;
  let x_at = min(row0 + load_row, p.M - 1u) * p.K4;
  let w_at = min(col0 + load_row, p.N - 1u) * p.K4;

  var acc: array<vec4<f32>, 4>;  // acc[i][j]: row row0 + 4·lid.y + i, column col0 + 4·lid.x + j
  for (var k4 = 0u; k4 < p.K4; k4 += STEP4) {
    let k = k4 + load_k4;
    var xv = vec4<f32>(0.0);
    var wv = vec4<f32>(0.0);
    if (k < p.K4) {
      xv = widen_x(X[x_at + k]);
      wv = vec4<f32>(W[w_at + k]);
    }
    for (var c = 0u; c < 4u; c++) {
      xs[4u * load_k4 + c][load_row] = xv[c];
      ws[4u * load_k4 + c][load_row] = wv[c];
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      let r = 4u * lid.y;
      let n = 4u * lid.x;
      let x = vec4<f32>(xs[kk][r], xs[kk][r + 1u], xs[kk][r + 2u], xs[kk][r + 3u]);
      let w = vec4<f32>(ws[kk][n], ws[kk][n + 1u], ws[kk][n + 2u], ws[kk][n + 3u]);
      for (var i = 0u; i < 4u; i++) { acc[i] = fma(vec4<f32>(x[i]), w, acc[i]); }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let row = row0 + 4u * lid.y + i;
    if (row >= p.M) { break; }
    for (var j = 0u; j < 4u; j += 2u) {
      let col = col0 + 4u * lid.x + j;
      if (col >= p.N) { break; }
      store_pair(acc[i][j], acc[i][j + 1u], row, col);
    }
  }
}
