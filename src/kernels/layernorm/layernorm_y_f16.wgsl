// layernorm_subgroup.wgsl's Y for f16 outputs (the X of the matmul that follows): each vec4 stored as four
// halves in two u32 (the lower column first), rounded to nearest even by pack2x16float.
@group(0) @binding(3) var<storage, read_write> Y: array<vec2<u32>>;

fn narrow_y(v: vec4<f32>) -> vec2<u32> { return vec2<u32>(pack2x16float(v.xy), pack2x16float(v.zw)); }
