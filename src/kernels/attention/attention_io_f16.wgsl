// The attention kernels' QKV and O for f16 activations (written and read by the matmuls): each vec4 as four
// halves in two u32, the lower dim first. Widening is exact; O is rounded to nearest even. On llvmpipe this
// halves the kernels' per-lane scalar loads.
@group(0) @binding(0) var<storage, read> QKV: array<vec2<u32>>;
@group(0) @binding(1) var<storage, read_write> O: array<vec2<u32>>;

fn widen_qkv(v: vec2<u32>) -> vec4<f32> { return vec4<f32>(unpack2x16float(v.x), unpack2x16float(v.y)); }
fn narrow_o(v: vec4<f32>) -> vec2<u32> { return vec2<u32>(pack2x16float(v.xy), pack2x16float(v.zw)); }
