import type { Dispatch } from '../../runtime/gpu.js';
import { dispatchKernel, type Scope } from '../dispatch.js';
import { spec, u32 } from '../kernel-spec.js';
import { f32Operand, u32Operand, type OperandRule } from '../operands.js';

export const GATHER_ROWS_SPEC = spec({
  kernel: 'gather_rows',
  shader: 'gather_rows.wgsl',
  bindings: [
    { wgsl: 'X', arg: 'x', access: 'read' },
    { wgsl: 'index', arg: 'index', access: 'read' },
    { wgsl: 'Y', arg: 'y', access: 'read_write' },
  ],
  uniforms: u32('rows', 'width', '_p0', '_p1'),
  defineSets: [{}],
});

export interface GatherRowsArgs {
  x: GPUBuffer;
  index: GPUBuffer;
  y: GPUBuffer;
  rows: number;
  width: number;
}

/** Y[i] = X[index[i]] for rows of `width` floats. */
export function gatherRows(scope: Scope, label: string, a: GatherRowsArgs): Promise<Dispatch> {
  return dispatchKernel(
    scope,
    GATHER_ROWS_SPEC,
    label,
    { x: a.x, index: a.index, y: a.y },
    { rows: a.rows, width: a.width },
    {},
    [Math.ceil(a.width / 64), a.rows, 1],
    { bytes: 8 * a.rows * a.width },
  );
}

/** X [any, width], index [rows] (u32) → Y [rows, width]. */
export const gatherRowsOperands: OperandRule<GatherRowsArgs> = (a) => ({
  x: f32Operand(null, a.width),
  index: u32Operand(a.rows),
  y: f32Operand(a.rows, a.width),
});
