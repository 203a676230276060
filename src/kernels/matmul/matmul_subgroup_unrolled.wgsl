// Y[M,N] = X[M,K] · W[N,K]ᵀ (+ bias) (-> GELU | QuickGELU) (+= Y): matmul_subgroup.wgsl's tile, spelled out for
// SwiftShader (Chromium's CPU adapter, 4-lane subgroups). SwiftShader compiles SPIR-V without unrolling loops, so
// an array indexed by a loop counter stays in memory and each access is a per-lane gather; and every storage load
// whose address is not a constant is a per-lane gather too (four branches and four scalar loads per 4-lane vector).
// So this kernel names every accumulator and index (//!unroll blocks, no arrays), and gets as many FMAs as it can
// from each load:
// - a workgroup is one subgroup of LANES and owns a (LANES·ROWS)×(LANES·COLS) output tile;
// - lane l loads, as vec4 along K, X rows row0 + l + LANES·i (i < ROWS) and W rows col0 + l + LANES·j (j < COLS);
// - every X row is handed to all lanes with subgroupBroadcast from a constant lane (a register shuffle).
// On SwiftShader the rule's 32×48 tile ran 3.3-4.1× the block kernel's GFLOP/s (bench/README.md, eighth pass).
// Rows/columns past M/N are clamped on load and skipped on store. K must be a multiple of 4.
enable subgroups;
//!include epilogue.wgsl
//!include subgroup_store_{{Y_TYPE}}.wgsl

//!include matmul_io.wgsl
//!include matmul_x_{{X_TYPE}}.wgsl
//!include matmul_w_{{W_TYPE}}.wgsl
//!include matmul_y_{{Y_TYPE}}.wgsl

const LANES = {{LANES}}u;

@compute @workgroup_size({{LANES}})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
  let row0 = wg.y * LANES * {{ROWS}}u;
  let col0 = wg.x * LANES * {{COLS}}u;
//!unroll i {{ROWS}}
  let x_at{{i}} = min(row0 + lane + LANES * {{i}}u, p.M - 1u) * p.K4;
//!end
//!unroll j {{COLS}}
  let w_at{{j}} = min(col0 + lane + LANES * {{j}}u, p.N - 1u) * p.K4;
//!end
  // acc_I_L_J: tile row LANES·I + L, this lane's column col0 + lane + LANES·J
//!unroll i {{ROWS}}
//!unroll l {{LANES}}
//!unroll j {{COLS}}
  var acc_{{i}}_{{l}}_{{j}} = 0.0;
//!end
//!end
//!end
  for (var k = 0u; k < p.K4; k++) {
//!unroll j {{COLS}}
    let w{{j}} = widen_w(W[w_at{{j}} + k]);
//!end
//!unroll i {{ROWS}}
    let x{{i}} = widen_x(X[x_at{{i}} + k]);
//!unroll l {{LANES}}
    {
      let s = subgroupBroadcast(x{{i}}, {{l}}u);
//!unroll j {{COLS}}
      acc_{{i}}_{{l}}_{{j}} = fma(s.w, w{{j}}.w, fma(s.z, w{{j}}.z, fma(s.y, w{{j}}.y, fma(s.x, w{{j}}.x, acc_{{i}}_{{l}}_{{j}}))));
//!end
    }
//!end
//!end
  }
  // The row test is the same in every lane, so every lane reaches each store_y (the f16 store shuffles).
//!unroll i {{ROWS}}
//!unroll l {{LANES}}
  if (row0 + LANES * {{i}}u + {{l}}u < p.M) {
//!unroll j {{COLS}}
    store_y(acc_{{i}}_{{l}}_{{j}}, row0 + LANES * {{i}}u + {{l}}u, col0 + lane + LANES * {{j}}u, lane);
//!end
  }
//!end
//!end
}
