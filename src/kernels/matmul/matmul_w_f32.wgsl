// matmul_subgroup.wgsl's W for f32 weights: W[N, K] rows as vec4s along K (widen_w is the identity).
@group(0) @binding(1) var<storage, read> W: array<vec4<f32>>;

fn widen_w(w: vec4<f32>) -> vec4<f32> { return w; }
