import type { Dispatch } from '../../runtime/gpu.js';
import { dispatchKernel, spread, type Scope } from '../dispatch.js';
import { spec, u32 } from '../kernel-spec.js';
import { f32Operand, type OperandRule } from '../operands.js';

export const ELEMENTWISE_SPEC = spec({
  kernel: 'elementwise',
  shader: 'elementwise.wgsl',
  bindings: [
    { wgsl: 'X', arg: 'x', access: 'read' },
    { wgsl: 'Y', arg: 'y', access: 'read_write' },
  ],
  uniforms: u32('n', 'op', '_pad0', '_pad1'),
  defineSets: [{}],
});

/** `op` of elementwise.wgsl. */
export const ELEMENTWISE_OPS = { gelu: 0, quick_gelu: 1 } as const;
export type ElementwiseOp = keyof typeof ELEMENTWISE_OPS;

export interface ElementwiseArgs {
  x: GPUBuffer;
  y: GPUBuffer;
  n: number;
  op: ElementwiseOp;
}

/** Y = op(X): the activations on their own (the model fuses them into matmuls). */
export function elementwise(scope: Scope, label: string, a: ElementwiseArgs): Promise<Dispatch> {
  const [gx, gy] = spread(Math.ceil(a.n / 64));
  return dispatchKernel(
    scope,
    ELEMENTWISE_SPEC,
    label,
    { x: a.x, y: a.y },
    { n: a.n, op: ELEMENTWISE_OPS[a.op] },
    {},
    [gx, gy, 1],
    { bytes: 8 * a.n },
  );
}

/** X [n] → Y [n]. */
export const elementwiseOperands: OperandRule<ElementwiseArgs> = (a) => ({ x: f32Operand(a.n), y: f32Operand(a.n) });
