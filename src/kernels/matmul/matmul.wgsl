// Y[M,N] = X[M,K] · W[N,K]ᵀ (+ bias) (-> GELU | QuickGELU) (+= Y), W in nn.Linear [out, in] layout.
// Each invocation computes a 4×4 block from vec4 loads along K of 4 X rows and 4 W rows: 8 loads feed
// 64 FMAs, and no workgroup memory is needed (on lavapipe workgroup tiles do not pay; loads dominate).
// Rows/columns past M/N are clamped on load and skipped on store, so any M and N work.
// K must be a multiple of 4 here; matmul_scalar.wgsl handles other K.
//!include epilogue.wgsl

//!include matmul_io.wgsl
//!include matmul_x_{{X_TYPE}}.wgsl
//!include matmul_y_{{Y_TYPE}}.wgsl
@group(0) @binding(1) var<storage, read> W: array<vec4<{{W_TYPE}}>>;

fn widen_w(w: vec4<{{W_TYPE}}>) -> vec4<f32> { return vec4<f32>(w); }

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row0 = gid.y * 4u;
  let col0 = gid.x * 4u;
  if (row0 >= p.M || col0 >= p.N) { return; }
  var xr: array<u32, 4>;
  var wr: array<u32, 4>;
  for (var i = 0u; i < 4u; i++) {
    xr[i] = min(row0 + i, p.M - 1u) * p.K4;
    wr[i] = min(col0 + i, p.N - 1u) * p.K4;
  }
  var acc: array<vec4<f32>, 4>;  // acc[i][j]: row row0+i, column col0+j
  for (var k = 0u; k < p.K4; k++) {
    let w0 = widen_w(W[wr[0] + k]);
    let w1 = widen_w(W[wr[1] + k]);
    let w2 = widen_w(W[wr[2] + k]);
    let w3 = widen_w(W[wr[3] + k]);
    for (var i = 0u; i < 4u; i++) {
      let x = widen_x(X[xr[i] + k]);
      acc[i] += vec4<f32>(dot(x, w0), dot(x, w1), dot(x, w2), dot(x, w3));
    }
  }
  for (var i = 0u; i < 4u; i++) {
    let row = row0 + i;
    if (row >= p.M) { break; }
    for (var j = 0u; j < 4u; j += 2u) {
      let col = col0 + j;
      if (col >= p.N) { break; }
      store_pair(acc[i][j], acc[i][j + 1u], row, col);
    }
  }
}
