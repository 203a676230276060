import type { Dispatch } from '../../runtime/gpu.js';
import { dispatchKernel, type Scope } from '../dispatch.js';
import { f32, spec, u32 } from '../kernel-spec.js';
import { f32Operand, u32Operand, type OperandRule } from '../operands.js';

export const ATTENTION_LAST_ROW_SPEC = spec({
  kernel: 'attention_last_row',
  shader: 'attention_last_row.wgsl',
  bindings: [
    { wgsl: 'QKV', arg: 'qkv', access: 'read' },
    { wgsl: 'allowed', arg: 'allowed', access: 'read' },
    { wgsl: 'O', arg: 'out', access: 'read_write' },
  ],
  uniforms: [...u32('T', 'W', 'D'), f32('scale')],
  defineSets: [{}],
});

export interface AttentionLastRowArgs {
  qkv: GPUBuffer;
  allowed: GPUBuffer;
  out: GPUBuffer;
  batch: number;
  seq: number;
  heads: number;
  headDim: number;
}

/**
 * Recomputes the last query row of each sequence over only the keys `allowed` marks ([B·T] u32, 1 = attend),
 * overwriting that row of `out` (CoCa's appended class token; run after the causal attention).
 */
export function attentionLastRow(scope: Scope, label: string, a: AttentionLastRowArgs): Promise<Dispatch> {
  const width = a.heads * a.headDim;
  return dispatchKernel(
    scope,
    ATTENTION_LAST_ROW_SPEC,
    label,
    { qkv: a.qkv, allowed: a.allowed, out: a.out },
    { T: a.seq, W: width, D: a.headDim, scale: 1 / Math.sqrt(a.headDim) },
    {},
    [Math.ceil(a.headDim / 64), a.heads, a.batch],
    { flops: 4 * a.batch * a.seq * width * a.headDim, bytes: 4 * a.batch * a.seq * 2 * width * a.headDim },
  );
}

/** qkv [B·T, 3·heads·headDim] and allowed [B·T] (u32) → out [B·T, heads·headDim] (its last rows rewritten). */
export const attentionLastRowOperands: OperandRule<AttentionLastRowArgs> = (a) => ({
  qkv: f32Operand(a.batch * a.seq, 3 * a.heads * a.headDim),
  allowed: u32Operand(a.batch * a.seq),
  out: f32Operand(a.batch * a.seq, a.heads * a.headDim),
});
