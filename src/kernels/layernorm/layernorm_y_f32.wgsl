// layernorm_subgroup.wgsl's Y for f32 outputs: rows as vec4s (narrow_y is the identity).
@group(0) @binding(3) var<storage, read_write> Y: array<vec4<f32>>;

fn narrow_y(v: vec4<f32>) -> vec4<f32> { return v; }
