// The matmul kernels' X for f32 activations: X[M, K] rows as vec4s along K (widen_x is the identity).
@group(0) @binding(0) var<storage, read> X: array<vec4<f32>>;

fn widen_x(x: vec4<f32>) -> vec4<f32> { return x; }
