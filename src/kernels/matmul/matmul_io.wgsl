// Bindings shared by the vec4 matmul kernels (Y[M,N] = X[M,K]·W[N,K]ᵀ, K4 = K/4; flags: see epilogue.wgsl).
// Each includer declares binding 1, W, in its own layout.
struct Params { M: u32, N: u32, K4: u32, flags: u32 }

@group(0) @binding(0) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
