/** The CPU reference of patchify.wgsl; the tests check the WGSL against it. */

/**
 * im2col for a P×P stride-P convolution: pixels [B, 3, S, S] → patches [B·G², 3·P·P], patch rows in
 * raster order and each row laid out as conv1's weight [out, 3, P, P] flattens (channel, then y, then x).
 */
export function patchifyRef(pixels: Float32Array, batch: number, patch: number, grid: number, imageSize: number) {
  const P = patch,
    S = imageSize,
    cols = 3 * P * P;
  const out = new Float32Array(batch * grid * grid * cols);
  for (let b = 0; b < batch; b++)
    for (let gy = 0; gy < grid; gy++)
      for (let gx = 0; gx < grid; gx++) {
        const row = (b * grid + gy) * grid + gx;
        for (let c = 0; c < 3; c++)
          for (let ky = 0; ky < P; ky++)
            for (let kx = 0; kx < P; kx++)
              out[row * cols + (c * P + ky) * P + kx] = pixels[((b * 3 + c) * S + gy * P + ky) * S + gx * P + kx]!;
      }
  return out;
}
