// matmul_subgroup.wgsl's W for f16 weights: W[N, K] rows, each 4 halves along K read as two u32 (two halves
// each, the lower K first) and widened exactly with unpack2x16float. On llvmpipe every lane's load is a scalar
// load, so this is two loads per 4 weights where vec4<f16> is four: 3-24 % faster at 16 lanes on the ViT-L/14
// shapes (bench/README.md, fifth pass), the same f32 values.
@group(0) @binding(1) var<storage, read> W: array<vec2<u32>>;

fn widen_w(w: vec2<u32>) -> vec4<f32> { return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)); }
