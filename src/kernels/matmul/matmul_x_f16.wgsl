// The vec4 matmul kernels' X for f16 activations: X[M, K] rows, each 4 halves along K read as two u32
// (two halves each, the lower K first) and widened exactly with unpack2x16float. On llvmpipe every lane's
// load is a scalar load with a bounds check, so this halves the X loads per FMA (bench/README.md, sixth pass).
@group(0) @binding(0) var<storage, read> X: array<vec2<u32>>;

fn widen_x(x: vec2<u32>) -> vec4<f32> { return vec4<f32>(unpack2x16float(x.x), unpack2x16float(x.y)); }
