import type { Dispatch } from '../../runtime/gpu.js';
import { dispatchKernel, type Scope } from '../dispatch.js';
import { f32, spec, u32, type BindingSpec } from '../kernel-spec.js';
import { subgroupKernelLanes } from '../tuning.js';
import { FLOAT_DTYPES, floatOperand, type FloatDtype, type OperandRule } from '../operands.js';

const ATTENTION_BINDINGS = [
  { wgsl: 'QKV', arg: 'qkv', access: 'read' },
  { wgsl: 'O', arg: 'out', access: 'read_write' },
] as const satisfies readonly BindingSpec[];
const ATTENTION_UNIFORMS = [...u32('T', 'W', 'causal'), f32('scale')];

/**
 * attention_tile.wgsl's width: LANES queries per workgroup (one subgroup), KEYS keys per lane per key block.
 * 8 lanes (llvmpipe at 256 and 512 bits: at 16 lanes a 16-query tile measured no faster, bench/README.md, fifth
 * pass) or 4 (llvmpipe at 128 bits; SwiftShader, spelled out in attention_tile_unrolled.wgsl: there KEYS = 4 ran
 * within 2 % of the best at ViT-L/14's 257 tokens and within 10 % at the text's 77, bench/README.md, eighth pass).
 */
const TILE_WIDTHS = { 8: { LANES: 8, KEYS: 3 }, 4: { LANES: 4, KEYS: 4 } } as const;

/** The output vec4s each lane of attention_tile_unrolled.wgsl owns (its OUT4). */
const outVec4sPerLane = (headDim: number, lanes: number): number => headDim / 4 / lanes;

export const ATTENTION_SPECS = {
  attention: spec({
    kernel: 'attention',
    shader: 'attention.wgsl',
    bindings: ATTENTION_BINDINGS,
    uniforms: ATTENTION_UNIFORMS,
    defineSets: [64, 12].flatMap((HEAD_DIM) => FLOAT_DTYPES.map((IO_TYPE) => ({ HEAD_DIM, IO_TYPE }))),
  }),
  attention_tile: spec({
    kernel: 'attention_tile',
    shader: 'attention_tile.wgsl',
    bindings: ATTENTION_BINDINGS,
    uniforms: ATTENTION_UNIFORMS,
    defineSets: [64, 32].flatMap((HEAD_DIM) =>
      FLOAT_DTYPES.flatMap((IO_TYPE) => [
        { HEAD_DIM, ...TILE_WIDTHS[8], IO_TYPE },
        { HEAD_DIM, ...TILE_WIDTHS[4], IO_TYPE },
      ]),
    ),
  }),
  attention_tile_unrolled: spec({
    kernel: 'attention_tile_unrolled',
    shader: 'attention_tile_unrolled.wgsl',
    bindings: ATTENTION_BINDINGS,
    uniforms: ATTENTION_UNIFORMS,
    defineSets: [64, 32].flatMap((HEAD_DIM) =>
      FLOAT_DTYPES.map((IO_TYPE) => ({ HEAD_DIM, ...TILE_WIDTHS[4], OUT4: outVec4sPerLane(HEAD_DIM, 4), IO_TYPE })),
    ),
  }),
};

export interface AttentionArgs {
  /** [B·T, 3·heads·headDim]: q | k | v as nn.MultiheadAttention's in_proj produces. */
  qkv: GPUBuffer;
  /** [B·T, heads·headDim] */
  out: GPUBuffer;
  batch: number;
  seq: number;
  heads: number;
  headDim: number;
  causal: boolean;
  /** qkv and out as f16 activations (default f32): only where attentionTakesHalves says so. */
  dtype?: FloatDtype;
}

/** Whether attention() reads and writes f16 activations for this head dim: both kernels do, for every head dim they take. */
export function attentionTakesHalves(headDim: number): boolean {
  return headDim % 4 === 0;
}

/**
 * attention_tile.wgsl gives each lane HEAD_DIM/LANES output dims of LANES queries, so the head dim must be a
 * multiple of 4·LANES (taken as 32 at either width); CLIP's is 64, and larger ones would spill more registers
 * (not measured; they keep the portable kernel).
 */
const ATTENTION_MAX_SUBGROUP_HEAD_DIM = 64;

/**
 * Multi-head scaled-dot-product attention (online softmax). Picks the subgroup kernel (scores as an 8×24 or
 * 4×16 matmul tile per key block, ~28% faster on llvmpipe than keeping queries in lanes) where the cpu-subgroup
 * family runs (subgroups of 4-16 lanes) and the head dim suits it, else the one-query-per-invocation kernel.
 */
export function attention(scope: Scope, label: string, a: AttentionArgs): Promise<Dispatch> {
  if (a.headDim % 4 !== 0) throw new Error(`attention: head dim ${a.headDim} is not a multiple of 4`);
  const width = a.heads * a.headDim;
  const pairs = a.causal ? (a.seq * (a.seq + 1)) / 2 : a.seq * a.seq;
  const args = { qkv: a.qkv, out: a.out };
  const params = { T: a.seq, W: width, causal: a.causal ? 1 : 0, scale: 1 / Math.sqrt(a.headDim) };
  const dtype = a.dtype ?? 'f32';
  const cost = {
    flops: 4 * a.batch * a.heads * pairs * a.headDim,
    bytes: (dtype === 'f16' ? 2 : 4) * a.batch * a.seq * width * 4,
  };
  const lanes = subgroupKernelLanes(scope.policy);
  if (lanes && a.headDim % 32 === 0 && a.headDim <= ATTENTION_MAX_SUBGROUP_HEAD_DIM) {
    const tile = TILE_WIDTHS[lanes];
    // Where the compiler keeps loops as written (SwiftShader), the tile spelled out: on Chromium's SwiftShader
    // the looped one ran 0.69 GFLOP/s and the portable kernel 1.04 against 4.19 (ViT-L/14's 16 heads × 257
    // tokens; bench/README.md, eighth pass).
    const unrolled = lanes === 4 && scope.policy.needsUnrolledKernels;
    return dispatchKernel(
      scope,
      unrolled ? ATTENTION_SPECS.attention_tile_unrolled : ATTENTION_SPECS.attention_tile,
      label,
      args,
      params,
      {
        HEAD_DIM: a.headDim,
        ...tile,
        ...(unrolled ? { OUT4: outVec4sPerLane(a.headDim, lanes) } : {}),
        IO_TYPE: dtype,
      },
      [Math.ceil(a.seq / tile.LANES), a.heads, a.batch],
      cost,
    );
  }
  return dispatchKernel(
    scope,
    ATTENTION_SPECS.attention,
    label,
    args,
    params,
    { HEAD_DIM: a.headDim, IO_TYPE: dtype },
    [Math.ceil(a.seq / 64), a.heads, a.batch],
    cost,
  );
}

/** qkv [B·T, 3·heads·headDim] → out [B·T, heads·headDim]. */
export const attentionOperands: OperandRule<AttentionArgs> = (a) => ({
  qkv: floatOperand(a.dtype ?? 'f32', a.batch * a.seq, 3 * a.heads * a.headDim),
  out: floatOperand(a.dtype ?? 'f32', a.batch * a.seq, a.heads * a.headDim),
});
