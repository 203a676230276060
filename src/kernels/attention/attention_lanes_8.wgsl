// The lane shuffles of attention_tile.wgsl for 8-lane subgroups (included when LANES = 8): subgroupBroadcast
// needs a constant lane, hence one spelled-out call per lane.

// Lane i's query vec4, handed to every lane, for each i.
fn broadcast_queries(q: vec4<f32>) -> array<vec4<f32>, LANES> {
  var b: array<vec4<f32>, LANES>;
  b[0] = subgroupBroadcast(q, 0u);
  b[1] = subgroupBroadcast(q, 1u);
  b[2] = subgroupBroadcast(q, 2u);
  b[3] = subgroupBroadcast(q, 3u);
  b[4] = subgroupBroadcast(q, 4u);
  b[5] = subgroupBroadcast(q, 5u);
  b[6] = subgroupBroadcast(q, 6u);
  b[7] = subgroupBroadcast(q, 7u);
  return b;
}

// The probabilities pj[i] (query i) that lane c holds, handed to every lane.
fn probabilities_of_lane(pj: array<f32, LANES>, c: u32) -> array<f32, LANES> {
  var out: array<f32, LANES>;
  switch c {
    case 0u: { for (var i = 0u; i < LANES; i++) { out[i] = subgroupBroadcast(pj[i], 0u); } }
    case 1u: { for (var i = 0u; i < LANES; i++) { out[i] = subgroupBroadcast(pj[i], 1u); } }
    case 2u: { for (var i = 0u; i < LANES; i++) { out[i] = subgroupBroadcast(pj[i], 2u); } }
    case 3u: { for (var i = 0u; i < LANES; i++) { out[i] = subgroupBroadcast(pj[i], 3u); } }
    case 4u: { for (var i = 0u; i < LANES; i++) { out[i] = subgroupBroadcast(pj[i], 4u); } }
    case 5u: { for (var i = 0u; i < LANES; i++) { out[i] = subgroupBroadcast(pj[i], 5u); } }
    case 6u: { for (var i = 0u; i < LANES; i++) { out[i] = subgroupBroadcast(pj[i], 6u); } }
    default: { for (var i = 0u; i < LANES; i++) { out[i] = subgroupBroadcast(pj[i], 7u); } }
  }
  return out;
}
