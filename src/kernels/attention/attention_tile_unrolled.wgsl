// attention_tile.wgsl spelled out for SwiftShader (Chromium's CPU adapter, 4-lane subgroups), which compiles
// loops as written: an array indexed by a loop counter stays in memory and each access is a per-lane gather, so
// here every score, statistic and accumulator is a named variable (//!unroll blocks) and only the loops over
// keys and head dims remain. The algorithm is attention_tile.wgsl's:
// - a workgroup is one subgroup of LANES and owns LANES query rows of one head; lane l loads query row q0 + l;
// - keys go by in blocks of LANES·KEYS, lane l owning keys key0 + l + LANES·j (j < KEYS); scores are a
//   LANES×(LANES·KEYS) tile, each query's vec4 handed to all lanes by subgroupBroadcast;
// - softmax statistics are reduced across lanes once per block (subgroupMax/subgroupAdd);
// - for P·V lane l owns output vec4s [OUT4·l, OUT4·(l+1)) of all LANES queries.
// Query rows past T are clamped on load and skipped on store; keys past T are masked like causal ones.
// QKV and O are f32, or f16 (IO_TYPE). OUT4 = HEAD_DIM / (4·LANES), a whole number (attention() checks).
enable subgroups;

struct Params { T: u32, W: u32, causal: u32, scale: f32 }

@group(0) @binding(2) var<uniform> p: Params;
//!include attention_io_{{IO_TYPE}}.wgsl

const LANES = {{LANES}}u;
const D4 = {{HEAD_DIM}}u / 4u;  // vec4s per head row
const OUT4 = {{OUT4}}u;          // vec4s of the output row each lane owns
const MASKED = -3.0e38;          // score of a masked key: exp(MASKED − max) is 0

@compute @workgroup_size({{LANES}})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
  let head = wg.y;
  let batch = wg.z;
  let q0 = wg.x * LANES;
  let W4 = p.W / 4u;
  let stride = 3u * W4;
  let base = batch * p.T * stride + head * D4;
  let causal = p.causal != 0u;
  let q_at = base + min(q0 + lane, p.T - 1u) * stride;  // this lane's query row q0 + lane

  // m_I, l_I: running max and sum of query q0 + I (the same in every lane); acc_I_T: its output vec4 OUT4·lane + T
//!unroll i {{LANES}}
  var m_{{i}} = MASKED;
  var l_{{i}} = 0.0;
//!unroll t {{OUT4}}
  var acc_{{i}}_{{t}} = vec4<f32>();
//!end
//!end

  // Causal rows of this workgroup see no key past its last row.
  let n_keys = select(p.T, min(p.T, q0 + LANES), causal);
  for (var key0 = 0u; key0 < n_keys; key0 += LANES * {{KEYS}}u) {
    // s_I_J: score of query q0 + I and this lane's key key0 + lane + LANES·J
//!unroll j {{KEYS}}
    let k_at{{j}} = base + min(key0 + lane + LANES * {{j}}u, p.T - 1u) * stride + W4;
//!unroll i {{LANES}}
    var s_{{i}}_{{j}} = 0.0;
//!end
//!end
    for (var d = 0u; d < D4; d++) {
      let q = widen_qkv(QKV[q_at + d]);
//!unroll j {{KEYS}}
      let k{{j}} = widen_qkv(QKV[k_at{{j}} + d]);
//!end
//!unroll i {{LANES}}
      {
        let b = subgroupBroadcast(q, {{i}}u);
//!unroll j {{KEYS}}
        s_{{i}}_{{j}} = fma(b.w, k{{j}}.w, fma(b.z, k{{j}}.z, fma(b.y, k{{j}}.y, fma(b.x, k{{j}}.x, s_{{i}}_{{j}}))));
//!end
      }
//!end
    }
//!unroll i {{LANES}}
    {
      var block_max = MASKED;
//!unroll j {{KEYS}}
      {
        let key = key0 + lane + LANES * {{j}}u;
        s_{{i}}_{{j}} = select(s_{{i}}_{{j}} * p.scale, MASKED, key >= p.T || (causal && key > q0 + {{i}}u));
        block_max = max(block_max, s_{{i}}_{{j}});
      }
//!end
      let new_max = max(m_{{i}}, subgroupMax(block_max));
      let rescale = exp(m_{{i}} - new_max);
      m_{{i}} = new_max;
      var sum = 0.0;
//!unroll j {{KEYS}}
      s_{{i}}_{{j}} = exp(s_{{i}}_{{j}} - new_max);
      sum += s_{{i}}_{{j}};
//!end
      l_{{i}} = l_{{i}} * rescale + subgroupAdd(sum);
//!unroll t {{OUT4}}
      acc_{{i}}_{{t}} *= rescale;
//!end
    }
//!end
    // Key key0 + c + LANES·J is lane c's: its value row's vec4s of this lane, times the probabilities lane c holds.
//!unroll j {{KEYS}}
//!unroll c {{LANES}}
    {
      let v_at = base + min(key0 + {{c}}u + LANES * {{j}}u, p.T - 1u) * stride + 2u * W4 + OUT4 * lane;
//!unroll t {{OUT4}}
      let v{{t}} = widen_qkv(QKV[v_at + {{t}}u]);
//!end
//!unroll i {{LANES}}
      {
        let pc = vec4<f32>(subgroupBroadcast(s_{{i}}_{{j}}, {{c}}u));
//!unroll t {{OUT4}}
        acc_{{i}}_{{t}} = fma(pc, v{{t}}, acc_{{i}}_{{t}});
//!end
      }
//!end
    }
//!end
//!end
  }
//!unroll i {{LANES}}
  if (q0 + {{i}}u < p.T) {
    let out_at = (batch * p.T + q0 + {{i}}u) * W4 + head * D4 + OUT4 * lane;
    let inv_l = 1.0 / l_{{i}};
//!unroll t {{OUT4}}
    O[out_at + {{t}}u] = narrow_o(acc_{{i}}_{{t}} * inv_l);
//!end
  }
//!end
}
