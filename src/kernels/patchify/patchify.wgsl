// im2col for the patch embedding (conv P×P, stride P, no bias): pixels [B, 3, H, W] -> patches
// [B·G², 3·P·P] with columns in conv1.weight's (channel, ky, kx) order, so the convolution becomes
// patches · conv1.weightᵀ (matmul with W viewed as [width, 3·P·P]).

struct Params { B: u32, P: u32, G: u32, image: u32 }

@group(0) @binding(0) var<storage, read> pixels: array<f32>;
@group(0) @binding(1) var<storage, read_write> patches: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
  let cols = 3u * p.P * p.P;
  let col = gid.x;
  let row = wg.y + wg.z * 65535u;  // b·G² + gy·G + gx
  if (col >= cols || row >= p.B * p.G * p.G) { return; }
  let b = row / (p.G * p.G);
  let g = row % (p.G * p.G);
  let c = col / (p.P * p.P);
  let ky = (col / p.P) % p.P;
  let kx = col % p.P;
  let y = (g / p.G) * p.P + ky;
  let x = (g % p.G) * p.P + kx;
  patches[row * cols + col] = pixels[((b * 3u + c) * p.image + y) * p.image + x];
}
