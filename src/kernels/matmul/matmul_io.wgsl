// Bindings shared by the vec4 matmul kernels (Y[M,N] = X[M,K]·W[N,K]ᵀ, K4 = K/4; flags: see epilogue.wgsl).
// X (binding 0), W (1) and Y (3) are declared by includes in the dtype each kernel reads and writes:
// matmul_x_*.wgsl, matmul_w_*.wgsl, matmul_y_*.wgsl.
struct Params { M: u32, N: u32, K4: u32, flags: u32 }

@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
