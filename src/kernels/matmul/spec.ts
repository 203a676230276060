/**
 * The matmul kernels' specs (one per shader in this folder), their flag bits, and how a variant launches:
 * its kernel, defines and the output tile one workgroup computes. kernels/tuning.ts reads these to name
 * what a device can run; ./index.ts launches them.
 */
import type { MatmulVariant, WeightDtype } from '../policy.js';
import { spec, u32, W_TYPES, type BindingSpec } from '../kernel-spec.js';
import type { ShaderDefines } from '../shader.js';
import { FLOAT_DTYPES, type FloatDtype } from '../operands.js';

/** matmul's fused epilogue (epilogue.wgsl): bit 0 bias, bits 1-2 activation, bit 3 accumulate into Y. */
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
/** 4-lane subgroup tiles (llvmpipe at 128 bits): 4R×4C, R and C 1-4. */
export const SUBGROUP4_TILES = SUBGROUP8_TILES;

/**
 * matmul_subgroup_unrolled.wgsl's 4-lane tiles (SwiftShader), R X rows × C W rows per lane: a 4R×4C tile. The
 * rule takes 1×8 (4×32) for M ≤ 16 and 8×12 (32×48) above; the others are the tuner's. On Chromium's SwiftShader
 * the 32×48 tile ran 8.0-9.9 GFLOP/s on the ViT-L/14 and text shapes (M = 231-257), against 2.4 for the block
 * kernel, and 4×32 2.0-4.8 against 1.0-2.0 at M = 3-12 (bench/README.md, eighth pass).
 */
export const UNROLLED4_TILES = [
  { rows: 1, cols: 8 },
  { rows: 2, cols: 8 },
  { rows: 4, cols: 8 },
  { rows: 4, cols: 12 },
  { rows: 8, cols: 8 },
  { rows: 8, cols: 12 },
] as const;

export type SubgroupLanes = 4 | 8 | 16;

/** A subgroup variant's width and tile; `unrolled` for matmul_subgroup_unrolled.wgsl (`unrolled4-RxC`). */
export function parseSubgroupVariant(
  variant: MatmulVariant,
): { lanes: SubgroupLanes; rows: number; cols: number; unrolled: boolean } | undefined {
  const m = /^(subgroup|unrolled)(4|16)?-(\d+)x(\d+)$/.exec(variant);
  if (!m || (m[1] === 'unrolled' && m[2] !== '4')) return undefined;
  const lanes = m[2] ? (Number(m[2]) as 4 | 16) : 8;
  return { lanes, rows: Number(m[3]), cols: Number(m[4]), unrolled: m[1] === 'unrolled' };
}

/** The variant name of an R×C-per-lane subgroup tile at this width. */
export function subgroupVariant(lanes: SubgroupLanes, rows: number, cols: number): MatmulVariant {
  return lanes === 8 ? `subgroup-${rows}x${cols}` : `subgroup${lanes}-${rows}x${cols}`;
}

/** The variant name of an R×C-per-lane spelled-out 4-lane tile (matmul_subgroup_unrolled.wgsl). */
export function unrolledVariant(rows: number, cols: number): MatmulVariant {
  return `unrolled4-${rows}x${cols}`;
}

/** Output columns per tile of matmul_packed.wgsl, fixed by the weight packing (8 lanes × 3 W rows). */
export const PACKED_TILE_COLS = 24;

/**
 * The dtypes of X and Y: f32, or f16 activations (two halves per u32) where a matmul feeds another matmul or
 * attention. Every vec4 kernel reads and writes halves (matmul_x_f16.wgsl, matmul_y_f16.wgsl); the scalar one
 * (K not a multiple of 4) does not.
 */
export interface MatmulIo {
  x: FloatDtype;
  y: FloatDtype;
}
export const F32_IO: MatmulIo = { x: 'f32', y: 'f32' };
/** Every X and Y dtype pair the vec4 kernels compile for. */
export const MATMUL_IOS: readonly MatmulIo[] = FLOAT_DTYPES.flatMap((x) => FLOAT_DTYPES.map((y) => ({ x, y })));
const ioDefines = (io: MatmulIo) => ({ X_TYPE: io.x, Y_TYPE: io.y });
const IO_TYPES = MATMUL_IOS.map(ioDefines);

export const MATMUL_SPECS = {
  matmul: spec({
    kernel: 'matmul',
    shader: 'matmul.wgsl',
    bindings: MATMUL_BINDINGS,
    uniforms: u32('M', 'N', 'K4', 'flags'),
    defineSets: W_TYPES.flatMap((W_TYPE) => IO_TYPES.map((io) => ({ W_TYPE, ...io }))),
  }),
  matmul_tiled: spec({
    kernel: 'matmul_tiled',
    shader: 'matmul_tiled.wgsl',
    bindings: MATMUL_BINDINGS,
    uniforms: u32('M', 'N', 'K4', 'flags'),
    defineSets: W_TYPES.flatMap((W_TYPE) => IO_TYPES.map((io) => ({ W_TYPE, ...io }))),
  }),
  matmul_subgroup: spec({
    kernel: 'matmul_subgroup',
    shader: 'matmul_subgroup.wgsl',
    bindings: MATMUL_BINDINGS,
    uniforms: u32('M', 'N', 'K4', 'flags'),
    defineSets: W_TYPES.flatMap((W_TYPE) =>
      IO_TYPES.flatMap((io) => [
        ...SUBGROUP8_TILES.map((t) => ({ W_TYPE, LANES: 8, ROWS: t.rows, COLS: t.cols, ...io })),
        ...SUBGROUP16_TILES.map((t) => ({ W_TYPE, LANES: 16, ROWS: t.rows, COLS: t.cols, ...io })),
        ...SUBGROUP4_TILES.map((t) => ({ W_TYPE, LANES: 4, ROWS: t.rows, COLS: t.cols, ...io })),
      ]),
    ),
  }),
  matmul_subgroup_unrolled: spec({
    kernel: 'matmul_subgroup_unrolled',
    shader: 'matmul_subgroup_unrolled.wgsl',
    bindings: MATMUL_BINDINGS,
    uniforms: u32('M', 'N', 'K4', 'flags'),
    defineSets: W_TYPES.flatMap((W_TYPE) =>
      IO_TYPES.flatMap((io) => UNROLLED4_TILES.map((t) => ({ W_TYPE, LANES: 4, ROWS: t.rows, COLS: t.cols, ...io }))),
    ),
  }),
  matmul_packed: spec({
    kernel: 'matmul_packed',
    shader: 'matmul_packed.wgsl',
    bindings: MATMUL_BINDINGS,
    uniforms: u32('M', 'N', 'K4', 'flags'),
    defineSets: [1, 2, 3].flatMap((ROWS) => IO_TYPES.map((io) => ({ ROWS, LANES: 8, ...io }))),
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

/**
 * The kernel, defines and tile of a matmul variant on [N, K] weights of this dtype (K a multiple of 4).
 */
export function matmulLaunch(variant: MatmulVariant, wDtype: WeightDtype, io: MatmulIo = F32_IO): MatmulLaunch {
  const sub = parseSubgroupVariant(variant);
  if (sub) {
    return {
      spec: sub.unrolled ? MATMUL_SPECS.matmul_subgroup_unrolled : MATMUL_SPECS.matmul_subgroup,
      defines: { W_TYPE: wDtype, LANES: sub.lanes, ROWS: sub.rows, COLS: sub.cols, ...ioDefines(io) },
      tile: { rows: sub.lanes * sub.rows, cols: sub.lanes * sub.cols },
    };
  }
  if (variant === 'tiled')
    return {
      spec: MATMUL_SPECS.matmul_tiled,
      defines: { W_TYPE: wDtype, ...ioDefines(io) },
      tile: { rows: 64, cols: 64 },
    };
  if (variant === 'block')
    return { spec: MATMUL_SPECS.matmul, defines: { W_TYPE: wDtype, ...ioDefines(io) }, tile: { rows: 32, cols: 32 } };
  throw new Error(`Unknown matmul variant ${variant as string}`);
}

/** matmul_packed.wgsl on weights packed by uploadMatmulWeights, with `rows` X rows per lane. */
export function packedMatmulLaunch(rows: number, io: MatmulIo = F32_IO): MatmulLaunch {
  return {
    spec: MATMUL_SPECS.matmul_packed,
    defines: { ROWS: rows, LANES: 8, ...ioDefines(io) },
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
