// The attention kernels' QKV and O for f32 activations, in vec4s (widen_qkv and narrow_o are identities).
@group(0) @binding(0) var<storage, read> QKV: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> O: array<vec4<f32>>;

fn widen_qkv(v: vec4<f32>) -> vec4<f32> { return v; }
fn narrow_o(v: vec4<f32>) -> vec4<f32> { return v; }
