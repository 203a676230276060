import type { Dispatch } from '../../runtime/gpu.js';
import { dispatchKernel, spread, type Scope } from '../dispatch.js';
import { f32, spec, u32, type BindingSpec } from '../kernel-spec.js';
import { subgroupKernelLanes } from '../tuning.js';
import { f32Operand, FLOAT_DTYPES, floatOperand, type FloatDtype, type OperandRule } from '../operands.js';

const LAYERNORM_BINDINGS = [
  { wgsl: 'X', arg: 'x', access: 'read' },
  { wgsl: 'gain', arg: 'gain', access: 'read' },
  { wgsl: 'shift', arg: 'shift', access: 'read' },
  { wgsl: 'Y', arg: 'y', access: 'read_write' },
] as const satisfies readonly BindingSpec[];
const LAYERNORM_UNIFORMS = [...u32('rows', 'cols', 'in_row_stride'), f32('eps')];

export const LAYERNORM_SPECS = {
  layernorm: spec({
    kernel: 'layernorm',
    shader: 'layernorm.wgsl',
    bindings: LAYERNORM_BINDINGS,
    uniforms: LAYERNORM_UNIFORMS,
    defineSets: FLOAT_DTYPES.map((Y_TYPE) => ({ Y_TYPE })),
  }),
  layernorm_subgroup: spec({
    kernel: 'layernorm_subgroup',
    shader: 'layernorm_subgroup.wgsl',
    bindings: LAYERNORM_BINDINGS,
    uniforms: LAYERNORM_UNIFORMS,
    defineSets: [1, 4].flatMap((ROWS) =>
      [8, 4].flatMap((LANES) => FLOAT_DTYPES.map((Y_TYPE) => ({ ROWS, LANES, Y_TYPE }))),
    ),
  }),
};

export interface LayerNormArgs {
  x: GPUBuffer;
  gain: GPUBuffer;
  shift: GPUBuffer;
  y: GPUBuffer;
  rows: number;
  cols: number;
  /** Output row r normalizes input row r·inRowStride (picks the class token of each image). */
  inRowStride?: number;
  eps?: number;
  /** Y as f16 activations (default f32), for a matmul to read: only where layerNormWritesHalves says so. */
  yDtype?: FloatDtype;
}

/**
 * Whether layerNorm() writes f16 outputs for this width, in every kernel family: both kernels do (two halves per
 * u32), so cols must be even (the subgroup kernel, which needs cols a multiple of 4, runs only then).
 */
export function layerNormWritesHalves(cols: number): boolean {
  return cols % 2 === 0;
}

/**
 * Rows per workgroup of layernorm_subgroup.wgsl: 4 shares each gain/shift load among 4 rows (measured
 * ~1.7× faster at 2056×1024 on llvmpipe), but below ~1000 rows the extra workgroups of 1 row each
 * measured as fast or faster.
 */
const layerNormRowsPerWorkgroup = (rows: number): number => (rows >= 1024 ? 4 : 1);

/**
 * Row-wise LayerNorm. Picks the subgroup kernel (one 8- or 4-lane subgroup per row, sums by subgroupAdd) where
 * the cpu-subgroup family runs (llvmpipe) and cols is a multiple of 4, else the workgroup-reduction kernel.
 */
export function layerNorm(scope: Scope, label: string, a: LayerNormArgs): Promise<Dispatch> {
  const args = { x: a.x, gain: a.gain, shift: a.shift, y: a.y };
  const params = { rows: a.rows, cols: a.cols, in_row_stride: a.inRowStride ?? 1, eps: a.eps ?? 1e-5 };
  const yDtype = a.yDtype ?? 'f32';
  const cost = { bytes: (yDtype === 'f16' ? 6 : 8) * a.rows * a.cols };
  if (yDtype === 'f16' && !layerNormWritesHalves(a.cols))
    throw new Error(`${label}: f16 output needs an even number of columns`);
  const lanes = subgroupKernelLanes(scope.policy);
  if (lanes && a.cols % 4 === 0) {
    const rowsPerWorkgroup = layerNormRowsPerWorkgroup(a.rows);
    const [gx, gy] = spread(Math.ceil(a.rows / rowsPerWorkgroup));
    return dispatchKernel(
      scope,
      LAYERNORM_SPECS.layernorm_subgroup,
      label,
      args,
      params,
      { ROWS: rowsPerWorkgroup, LANES: lanes, Y_TYPE: yDtype },
      [gx, gy, 1],
      cost,
    );
  }
  const [gx, gy] = spread(a.rows);
  return dispatchKernel(scope, LAYERNORM_SPECS.layernorm, label, args, params, { Y_TYPE: yDtype }, [gx, gy, 1], cost);
}

/** X [rows·inRowStride, cols] → Y [rows, cols]. */
export const layerNormOperands: OperandRule<LayerNormArgs> = (a) => ({
  x: f32Operand(a.rows * (a.inRowStride ?? 1), a.cols),
  y: floatOperand(a.yDtype ?? 'f32', a.rows, a.cols),
});
