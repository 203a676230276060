// The lane shuffles of attention_tile.wgsl for 4-lane subgroups (included when LANES = 4): subgroupBroadcast
// needs a constant lane, hence one spelled-out call per lane.

// Lane i's query vec4, handed to every lane, for each i.
fn broadcast_queries(q: vec4<f32>) -> array<vec4<f32>, LANES> {
  var b: array<vec4<f32>, LANES>;
  b[0] = subgroupBroadcast(q, 0u);
  b[1] = subgroupBroadcast(q, 1u);
  b[2] = subgroupBroadcast(q, 2u);
  b[3] = subgroupBroadcast(q, 3u);
  return b;
}

// The probabilities pj[i] (query i) that lane c holds, handed to every lane.
fn probabilities_of_lane(pj: array<f32, LANES>, c: u32) -> array<f32, LANES> {
  var out: array<f32, LANES>;
  switch c {
    case 0u: { for (var i = 0u; i < LANES; i++) { out[i] = subgroupBroadcast(pj[i], 0u); } }
    case 1u: { for (var i = 0u; i < LANES; i++) { out[i] = subgroupBroadcast(pj[i], 1u); } }
    case 2u: { for (var i = 0u; i < LANES; i++) { out[i] = subgroupBroadcast(pj[i], 2u); } }
    default: { for (var i = 0u; i < LANES; i++) { out[i] = subgroupBroadcast(pj[i], 3u); } }
  }
  return out;
}
