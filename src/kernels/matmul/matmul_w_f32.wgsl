// matmul_subgroup.wgsl's W for f32 weights: W[N, K] rows as vec4s along K.
@group(0) @binding(1) var<storage, read> W: array<vec4<f32>>;

fn w_vec4(at: u32) -> vec4<f32> { return W[at]; }
