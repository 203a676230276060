/**
 * The per-device table of kernel choices, owned by the Gpu (one per device, gone with it). The kernels
 * layer fills and reads it (kernels/tuning.ts: tuningOf); it lives here because the Gpu holds it and
 * the runtime may not import the kernels.
 */

export type WeightDtype = 'f32' | 'f16';

/**
 * A matmul kernel with its shape parameters: `subgroup-RxC` is matmul_subgroup.wgsl with R X rows and
 * C W rows per lane (an 8R×8C tile per 8-lane workgroup), `subgroup16-RxC` the same with 16 lanes (a
 * 16R×16C tile; subgroups of 16 only), `block` matmul.wgsl (4×4 per invocation, no workgroup memory),
 * `tiled` matmul_tiled.wgsl (64×64 workgroup-memory tiles, 256 invocations).
 */
export type MatmulVariant = 'block' | 'tiled' | `subgroup-${number}x${number}` | `subgroup16-${number}x${number}`;

export interface MatmulShape {
  M: number;
  N: number;
  K: number;
  wDtype: WeightDtype;
}

/** Groups M (rows: tokens × batch) by the next power of two, so one choice serves similar batch sizes. */
function rowBucket(M: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(M, 1)));
}

export function shapeKey(s: MatmulShape): string {
  return `matmul:${s.wDtype}:M${rowBucket(s.M)}:K${s.K}:N${s.N}`;
}

/**
 * Kernel choices for one device: measured ones (from the autotuner or its cache) override the built-in
 * rules; `requested` records every matmul shape planned so far, which is what the tuner measures.
 */
export class KernelTuning {
  readonly choices = new Map<string, MatmulVariant>();
  readonly requested = new Map<string, MatmulShape>();

  choose(shape: MatmulShape): MatmulVariant | undefined {
    const key = shapeKey(shape);
    if (!this.requested.has(key)) this.requested.set(key, shape);
    return this.choices.get(key);
  }
}
