import type { Dispatch } from '../../runtime/gpu.js';
import { dispatchKernel, type Scope } from '../dispatch.js';
import { spec, u32 } from '../kernel-spec.js';
import { floatOperand, u32Operand, type FloatDtype, type OperandRule } from '../operands.js';

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
  /** The rows' dtype (default f32); f16 rows need an even width. */
  dtype?: FloatDtype;
}

/** Y[i] = X[index[i]] for rows of `width` values, copied bit for bit. */
export function gatherRows(scope: Scope, label: string, a: GatherRowsArgs): Promise<Dispatch> {
  const half = a.dtype === 'f16';
  if (half && a.width % 2 !== 0) throw new Error(`${label}: f16 rows of odd width ${a.width}`);
  const words = half ? a.width / 2 : a.width;
  return dispatchKernel(
    scope,
    GATHER_ROWS_SPEC,
    label,
    { x: a.x, index: a.index, y: a.y },
    { rows: a.rows, width: words },
    {},
    [Math.ceil(words / 64), a.rows, 1],
    { bytes: 8 * a.rows * words },
  );
}

/** X [any, width], index [rows] (u32) → Y [rows, width]. */
export const gatherRowsOperands: OperandRule<GatherRowsArgs> = (a) => ({
  x: floatOperand(a.dtype ?? 'f32', null, a.width),
  index: u32Operand(a.rows),
  y: floatOperand(a.dtype ?? 'f32', a.rows, a.width),
});
