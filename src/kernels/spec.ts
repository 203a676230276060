/**
 * One typed spec per kernel: its shader, its storage bindings in order (the WGSL variable, its access,
 * the launcher argument that fills it), its uniform struct `Params` field by field, and for the matmuls
 * the flag bits and workgroup geometry. Launchers build bind groups, uniforms and workgroup counts from
 * these, and test/kernel-spec.test.ts checks them against the WGSL, so neither side can drift alone.
 */
import type { MatmulVariant, WeightDtype } from '../runtime/kernel-choices.js';
import type { ShaderDefines } from './shader.js';

export type Access = 'read' | 'read_write';

export interface BindingSpec<Arg extends string = string> {
  /** The variable's name in the WGSL (`var<storage, ...> NAME`). */
  wgsl: string;
  /** The launcher argument whose buffer is bound here. */
  arg: Arg;
  access: Access;
  /** A flag under which a read_write binding's previous contents are read too (matmul's `accumulate`). */
  readsOldValueWhen?: 'accumulate';
}

/** A field of the shader's `struct Params`; fields named `_…` are padding, written as 0. */
export interface UniformField<Name extends string = string> {
  name: Name;
  type: 'u32' | 'f32';
}

export interface KernelSpec<Arg extends string = string, Field extends string = string> {
  /** Dispatch.kernel of its dispatches (the shader's name without .wgsl). */
  kernel: string;
  shader: string;
  /** Storage bindings 0..n-1; the uniform `p: Params` is binding n. */
  bindings: readonly BindingSpec<Arg>[];
  uniforms: readonly UniformField<Field>[];
  /** Every define set the launcher can pass (sizes that only fill a constant are given by example). */
  defineSets: readonly ShaderDefines[];
}

/** The uniform values a launcher supplies: every field but the padding. */
export type UniformValues<S extends KernelSpec> =
  S extends KernelSpec<string, infer F> ? Record<Exclude<F, `_${string}`>, number> : never;
/** The buffers a launcher supplies, by argument name. */
export type BindingArgs<S extends KernelSpec> = S extends KernelSpec<infer A, string> ? Record<A, GPUBuffer> : never;

/** Keeps the literal types of a spec's argument and field names. */
function spec<const A extends string, const F extends string>(s: KernelSpec<A, F>): KernelSpec<A, F> {
  return s;
}

const u32 = <N extends string>(...names: N[]): UniformField<N>[] => names.map((name) => ({ name, type: 'u32' }));
const f32 = <N extends string>(name: N): UniformField<N> => ({ name, type: 'f32' });
const W_TYPES: readonly WeightDtype[] = ['f32', 'f16'];

// ---- matmul -------------------------------------------------------------------------------------

/** matmul's fused epilogue (shaders/epilogue.wgsl): bit 0 bias, bits 1-2 activation, bit 3 accumulate into Y. */
export const MATMUL_FLAGS = { bias: 1, activationShift: 1, accumulate: 8 } as const;
export type Activation = 'none' | 'gelu' | 'quick_gelu';
export const ACTIVATION_CODES: Record<Activation, number> = { none: 0, gelu: 1, quick_gelu: 2 };

export function matmulFlags(o: { bias?: boolean; activation?: Activation; accumulate?: boolean }): number {
  return (
    (o.bias ? MATMUL_FLAGS.bias : 0) |
    (ACTIVATION_CODES[o.activation ?? 'none'] << MATMUL_FLAGS.activationShift) |
    (o.accumulate ? MATMUL_FLAGS.accumulate : 0)
  );
}

/** matmul_io.wgsl's bindings (W is declared by each matmul shader, at binding 1). */
const MATMUL_BINDINGS = [
  { wgsl: 'X', arg: 'x', access: 'read' },
  { wgsl: 'W', arg: 'w', access: 'read' },
  { wgsl: 'bias', arg: 'bias', access: 'read' },
  { wgsl: 'Y', arg: 'y', access: 'read_write', readsOldValueWhen: 'accumulate' },
] as const satisfies readonly BindingSpec[];

/** 8-lane subgroup tiles: R X rows × C W rows per lane (isUsableVariant accepts these from a cache). */
export const SUBGROUP8_TILES = [1, 2, 3, 4].flatMap((rows) => [1, 2, 3, 4].map((cols) => ({ rows, cols })));
export const SUBGROUP16_TILES = [1, 2, 3].flatMap((rows) => [1, 2, 3].map((cols) => ({ rows, cols })));

export function parseSubgroupVariant(
  variant: MatmulVariant,
): { lanes: 8 | 16; rows: number; cols: number } | undefined {
  const m = /^subgroup(16)?-(\d)x(\d)$/.exec(variant);
  return m ? { lanes: m[1] ? 16 : 8, rows: Number(m[2]), cols: Number(m[3]) } : undefined;
}

/** Output columns per tile of matmul_packed.wgsl, fixed by the weight packing (8 lanes × 3 W rows). */
export const PACKED_TILE_COLS = 24;

export const MATMUL_SPECS = {
  matmul: spec({
    kernel: 'matmul',
    shader: 'matmul.wgsl',
    bindings: MATMUL_BINDINGS,
    uniforms: u32('M', 'N', 'K4', 'flags'),
    defineSets: W_TYPES.map((W_TYPE) => ({ W_TYPE })),
  }),
  matmul_tiled: spec({
    kernel: 'matmul_tiled',
    shader: 'matmul_tiled.wgsl',
    bindings: MATMUL_BINDINGS,
    uniforms: u32('M', 'N', 'K4', 'flags'),
    defineSets: W_TYPES.map((W_TYPE) => ({ W_TYPE })),
  }),
  matmul_subgroup: spec({
    kernel: 'matmul_subgroup',
    shader: 'matmul_subgroup.wgsl',
    bindings: MATMUL_BINDINGS,
    uniforms: u32('M', 'N', 'K4', 'flags'),
    defineSets: W_TYPES.flatMap((W_TYPE) => [
      ...SUBGROUP8_TILES.map((t) => ({ W_TYPE, LANES: 8, ROWS: t.rows, COLS: t.cols })),
      ...SUBGROUP16_TILES.map((t) => ({ W_TYPE, LANES: 16, ROWS: t.rows, COLS: t.cols })),
    ]),
  }),
  matmul_packed: spec({
    kernel: 'matmul_packed',
    shader: 'matmul_packed.wgsl',
    bindings: MATMUL_BINDINGS,
    uniforms: u32('M', 'N', 'K4', 'flags'),
    defineSets: [1, 2, 3].map((ROWS) => ({ ROWS, LANES: 8 })),
  }),
  matmul_scalar: spec({
    kernel: 'matmul_scalar',
    shader: 'matmul_scalar.wgsl',
    bindings: MATMUL_BINDINGS,
    uniforms: u32('M', 'N', 'K', 'flags'),
    defineSets: W_TYPES.map((W_TYPE) => ({ W_TYPE })),
  }),
};

/** One way to run a matmul: the kernel, its defines, and the output tile one workgroup computes. */
export interface MatmulLaunch {
  spec: (typeof MATMUL_SPECS)[keyof typeof MATMUL_SPECS];
  defines: ShaderDefines;
  tile: { rows: number; cols: number };
}

/** The kernel, defines and tile of a matmul variant on [N, K] weights of this dtype (K a multiple of 4). */
export function matmulLaunch(variant: MatmulVariant, wDtype: WeightDtype): MatmulLaunch {
  const sub = parseSubgroupVariant(variant);
  if (sub) {
    return {
      spec: MATMUL_SPECS.matmul_subgroup,
      defines: { W_TYPE: wDtype, LANES: sub.lanes, ROWS: sub.rows, COLS: sub.cols },
      tile: { rows: sub.lanes * sub.rows, cols: sub.lanes * sub.cols },
    };
  }
  if (variant === 'tiled')
    return { spec: MATMUL_SPECS.matmul_tiled, defines: { W_TYPE: wDtype }, tile: { rows: 64, cols: 64 } };
  if (variant === 'block')
    return { spec: MATMUL_SPECS.matmul, defines: { W_TYPE: wDtype }, tile: { rows: 32, cols: 32 } };
  throw new Error(`Unknown matmul variant ${variant as string}`);
}

/** matmul_packed.wgsl on weights packed by uploadMatmulWeights, with `rows` X rows per lane. */
export function packedMatmulLaunch(rows: number): MatmulLaunch {
  return {
    spec: MATMUL_SPECS.matmul_packed,
    defines: { ROWS: rows, LANES: 8 },
    tile: { rows: 8 * rows, cols: PACKED_TILE_COLS },
  };
}

/** matmul_scalar.wgsl (one output per invocation, 8×8 workgroups), for K not a multiple of 4. */
export function scalarMatmulLaunch(wDtype: WeightDtype): MatmulLaunch {
  return { spec: MATMUL_SPECS.matmul_scalar, defines: { W_TYPE: wDtype }, tile: { rows: 8, cols: 8 } };
}

/** Workgroups covering Y[M, N] with a launch's tiles: x over columns, y over rows. */
export function matmulWorkgroups(tile: MatmulLaunch['tile'], M: number, N: number): [number, number, number] {
  return [Math.ceil(N / tile.cols), Math.ceil(M / tile.rows), 1];
}

// ---- the other kernels --------------------------------------------------------------------------

const LAYERNORM_BINDINGS = [
  { wgsl: 'X', arg: 'x', access: 'read' },
  { wgsl: 'gain', arg: 'gain', access: 'read' },
  { wgsl: 'shift', arg: 'shift', access: 'read' },
  { wgsl: 'Y', arg: 'y', access: 'read_write' },
] as const satisfies readonly BindingSpec[];
const LAYERNORM_UNIFORMS = [...u32('rows', 'cols', 'in_row_stride'), f32('eps')];

const ATTENTION_BINDINGS = [
  { wgsl: 'QKV', arg: 'qkv', access: 'read' },
  { wgsl: 'O', arg: 'out', access: 'read_write' },
] as const satisfies readonly BindingSpec[];
const ATTENTION_UNIFORMS = [...u32('T', 'W', 'causal'), f32('scale')];

export const OTHER_SPECS = {
  layernorm: spec({
    kernel: 'layernorm',
    shader: 'layernorm.wgsl',
    bindings: LAYERNORM_BINDINGS,
    uniforms: LAYERNORM_UNIFORMS,
    defineSets: [{}],
  }),
  layernorm_subgroup: spec({
    kernel: 'layernorm_subgroup',
    shader: 'layernorm_subgroup.wgsl',
    bindings: LAYERNORM_BINDINGS,
    uniforms: LAYERNORM_UNIFORMS,
    defineSets: [1, 4].map((ROWS) => ({ ROWS })),
  }),
  attention: spec({
    kernel: 'attention',
    shader: 'attention.wgsl',
    bindings: ATTENTION_BINDINGS,
    uniforms: ATTENTION_UNIFORMS,
    defineSets: [{ HEAD_DIM: 64 }, { HEAD_DIM: 12 }],
  }),
  attention_tile: spec({
    kernel: 'attention_tile',
    shader: 'attention_tile.wgsl',
    bindings: ATTENTION_BINDINGS,
    uniforms: ATTENTION_UNIFORMS,
    defineSets: [{ HEAD_DIM: 64 }, { HEAD_DIM: 32 }],
  }),
  elementwise: spec({
    kernel: 'elementwise',
    shader: 'elementwise.wgsl',
    bindings: [
      { wgsl: 'X', arg: 'x', access: 'read' },
      { wgsl: 'Y', arg: 'y', access: 'read_write' },
    ],
    uniforms: u32('n', 'op', '_pad0', '_pad1'),
    defineSets: [{}],
  }),
  embed_tokens: spec({
    kernel: 'embed_tokens',
    shader: 'embed_tokens.wgsl',
    bindings: [
      { wgsl: 'ids', arg: 'ids', access: 'read' },
      // one dispatch per chunk of the table, each binding that chunk's buffer
      { wgsl: 'table', arg: 'chunks', access: 'read' },
      { wgsl: 'pos', arg: 'pos', access: 'read' },
      { wgsl: 'Y', arg: 'y', access: 'read_write' },
    ],
    uniforms: u32('rows', 'T', 'width', 'row_offset', 'chunk_rows', '_p0', '_p1', '_p2'),
    defineSets: W_TYPES.map((W_TYPE) => ({ W_TYPE })),
  }),
  patchify: spec({
    kernel: 'patchify',
    shader: 'patchify.wgsl',
    bindings: [
      { wgsl: 'pixels', arg: 'pixels', access: 'read' },
      { wgsl: 'patches', arg: 'patches', access: 'read_write' },
    ],
    uniforms: u32('B', 'P', 'G', 'image'),
    defineSets: [{}],
  }),
  vision_tokens: spec({
    kernel: 'vision_tokens',
    shader: 'vision_tokens.wgsl',
    bindings: [
      { wgsl: 'patch_embed', arg: 'patchEmbed', access: 'read' },
      { wgsl: 'class_embedding', arg: 'classEmbedding', access: 'read' },
      { wgsl: 'pos', arg: 'pos', access: 'read' },
      { wgsl: 'Y', arg: 'y', access: 'read_write' },
    ],
    uniforms: u32('B', 'T', 'width', '_p'),
    defineSets: [{}],
  }),
  gather_rows: spec({
    kernel: 'gather_rows',
    shader: 'gather_rows.wgsl',
    bindings: [
      { wgsl: 'X', arg: 'x', access: 'read' },
      { wgsl: 'index', arg: 'index', access: 'read' },
      { wgsl: 'Y', arg: 'y', access: 'read_write' },
    ],
    uniforms: u32('rows', 'width', '_p0', '_p1'),
    defineSets: [{}],
  }),
  attention_last_row: spec({
    kernel: 'attention_last_row',
    shader: 'attention_last_row.wgsl',
    bindings: [
      { wgsl: 'QKV', arg: 'qkv', access: 'read' },
      { wgsl: 'allowed', arg: 'allowed', access: 'read' },
      { wgsl: 'O', arg: 'out', access: 'read_write' },
    ],
    uniforms: [...u32('T', 'W', 'D'), f32('scale')],
    defineSets: [{}],
  }),
  mean_rows: spec({
    kernel: 'mean_rows',
    shader: 'mean_rows.wgsl',
    bindings: [
      { wgsl: 'X', arg: 'x', access: 'read' },
      { wgsl: 'Y', arg: 'y', access: 'read_write' },
    ],
    uniforms: u32('B', 'T', 'width', 'first'),
    defineSets: [{}],
  }),
};

/** `op` of elementwise.wgsl. */
export const ELEMENTWISE_OPS = { gelu: 0, quick_gelu: 1 } as const;
export type ElementwiseOp = keyof typeof ELEMENTWISE_OPS;

export const KERNEL_SPECS: readonly KernelSpec[] = [...Object.values(MATMUL_SPECS), ...Object.values(OTHER_SPECS)];

/** The spec of the kernel a Dispatch names (Dispatch.kernel). */
export function kernelSpec(kernel: string): KernelSpec {
  const found = KERNEL_SPECS.find((s) => s.kernel === kernel);
  if (!found) throw new Error(`No kernel spec named ${kernel}`);
  return found;
}

/** The launcher arguments whose buffers this kernel writes. */
export function kernelWrites(kernel: string): string[] {
  return kernelSpec(kernel)
    .bindings.filter((b) => b.access === 'read_write')
    .map((b) => b.arg);
}

/** The launcher arguments whose buffers this kernel reads: matmul reads `y` too when it accumulates into it. */
export function kernelReads(kernel: string, flags: { accumulate?: boolean } = {}): string[] {
  return kernelSpec(kernel)
    .bindings.filter((b) => b.access === 'read' || (b.readsOldValueWhen !== undefined && flags[b.readsOldValueWhen]))
    .map((b) => b.arg);
}

/** A spec's uniform words in field order, padding as 0 and f32 fields as floats (see uniformWords). */
export function uniformValues<S extends KernelSpec>(s: S, values: UniformValues<S>): (number | { f: number })[] {
  const given = values as Record<string, number>;
  return s.uniforms.map((field) => {
    if (field.name.startsWith('_')) return 0;
    const v = given[field.name];
    if (v === undefined) throw new Error(`${s.kernel}: no value for the uniform ${field.name}`);
    return field.type === 'f32' ? { f: v } : v;
  });
}

/** A spec's buffers in binding order. */
export function bindingBuffers<S extends KernelSpec>(s: S, args: BindingArgs<S>): GPUBuffer[] {
  const given = args as Record<string, GPUBuffer>;
  return s.bindings.map((b) => {
    const buffer = given[b.arg];
    if (!buffer) throw new Error(`${s.kernel}: no buffer for ${b.arg} (binding ${b.wgsl})`);
    return buffer;
  });
}
