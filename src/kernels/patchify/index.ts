import type { Dispatch } from '../../runtime/gpu.js';
import { dispatchKernel, spread, type Scope } from '../dispatch.js';
import { spec, u32 } from '../kernel-spec.js';
import { f32Operand, type OperandRule } from '../operands.js';

export const PATCHIFY_SPEC = spec({
  kernel: 'patchify',
  shader: 'patchify.wgsl',
  bindings: [
    { wgsl: 'pixels', arg: 'pixels', access: 'read' },
    { wgsl: 'patches', arg: 'patches', access: 'read_write' },
  ],
  uniforms: u32('B', 'P', 'G', 'image'),
  defineSets: [{}],
});

export interface PatchifyArgs {
  pixels: GPUBuffer;
  patches: GPUBuffer;
  batch: number;
  patch: number;
  grid: number;
  imageSize: number;
}

/** im2col for a P×P stride-P convolution: pixels [B,3,S,S] → patches [B·G², 3·P·P]. */
export function patchify(scope: Scope, label: string, a: PatchifyArgs): Promise<Dispatch> {
  const rows = a.batch * a.grid * a.grid;
  const [gy, gz] = spread(rows);
  return dispatchKernel(
    scope,
    PATCHIFY_SPEC,
    label,
    { pixels: a.pixels, patches: a.patches },
    { B: a.batch, P: a.patch, G: a.grid, image: a.imageSize },
    {},
    [Math.ceil((3 * a.patch * a.patch) / 64), gy, gz],
    { bytes: 8 * rows * 3 * a.patch * a.patch },
  );
}

/** pixels [B, 3, S, S] → patches [B·G², 3·P·P]. */
export const patchifyOperands: OperandRule<PatchifyArgs> = (a) => ({
  pixels: f32Operand(a.batch, 3, a.imageSize, a.imageSize),
  patches: f32Operand(a.batch * a.grid * a.grid, 3 * a.patch * a.patch),
});
