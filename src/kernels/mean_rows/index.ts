import type { Dispatch } from '../../runtime/gpu.js';
import { dispatchKernel, type Scope } from '../dispatch.js';
import { spec, u32 } from '../kernel-spec.js';
import { f32Operand, type OperandRule } from '../operands.js';

export const MEAN_ROWS_SPEC = spec({
  kernel: 'mean_rows',
  shader: 'mean_rows.wgsl',
  bindings: [
    { wgsl: 'X', arg: 'x', access: 'read' },
    { wgsl: 'Y', arg: 'y', access: 'read_write' },
  ],
  uniforms: u32('B', 'T', 'width', 'first'),
  defineSets: [{}],
});

export interface MeanRowsArgs {
  x: GPUBuffer;
  y: GPUBuffer;
  batch: number;
  seq: number;
  width: number;
  first: number;
}

/** Y[b] = the mean of X[b·T + t] over t in [first, T), rows of `width` floats (open_clip's avg pool). */
export function meanRows(scope: Scope, label: string, a: MeanRowsArgs): Promise<Dispatch> {
  if (!(a.first < a.seq)) throw new Error(`${label}: no rows to average (first ${a.first}, seq ${a.seq})`);
  return dispatchKernel(
    scope,
    MEAN_ROWS_SPEC,
    label,
    { x: a.x, y: a.y },
    { B: a.batch, T: a.seq, width: a.width, first: a.first },
    {},
    [Math.ceil(a.width / 64), a.batch, 1],
    { bytes: 4 * a.batch * (a.seq + 1) * a.width },
  );
}

/** X [B·T, width] → Y [B, width]. */
export const meanRowsOperands: OperandRule<MeanRowsArgs> = (a) => ({
  x: f32Operand(a.batch * a.seq, a.width),
  y: f32Operand(a.batch, a.width),
});
