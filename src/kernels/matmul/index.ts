import type { Dispatch } from '../../runtime/gpu.js';
import { dispatchKernel, type DispatchCost, type Scope } from '../dispatch.js';
import {
  defaultMatmulVariant,
  subgroup8Rows,
  subgroupsOf4,
  subgroupsOf8,
  subgroupsOf16,
  tuningOf,
  type MatmulVariant,
  type WeightDtype,
} from '../tuning.js';
import {
  matmulFlags,
  matmulLaunch,
  matmulWorkgroups,
  PACKED_TILE_COLS,
  packedMatmulLaunch,
  parseSubgroupVariant,
  scalarMatmulLaunch,
  type Activation,
  type MatmulIo,
  type MatmulLaunch,
} from './spec.js';
import { floatOperand, type FloatDtype, type OperandRule } from '../operands.js';
import type { KernelFamily, KernelPolicy } from '../policy.js';

/**
 * Matmul weights as uploadMatmulWeights made them: `packed` ones are f16 in matmul_packed.wgsl's layout,
 * the others W[N, K] rows in `dtype`. Pass one only to matmul() with this N and K, under a policy of the
 * family they were laid out for.
 */
export interface MatmulWeight {
  readonly buffer: GPUBuffer;
  readonly packed: boolean;
  /** The kernel family whose layout they have (KernelPolicy.matmulWeightLayout). */
  readonly family: KernelFamily;
  readonly dtype: WeightDtype;
  readonly N: number;
  readonly K: number;
}

function isMatmulWeight(w: GPUBuffer | MatmulWeight): w is MatmulWeight {
  return 'packed' in w && 'buffer' in w;
}

export interface MatmulArgs {
  x: GPUBuffer;
  /** Weights from uploadMatmulWeights, or a bare buffer of W[N, K] rows in `wDtype`. */
  w: GPUBuffer | MatmulWeight;
  y: GPUBuffer;
  bias?: GPUBuffer;
  M: number;
  N: number;
  K: number;
  activation?: Activation;
  /** Y += result (fused residual add). */
  accumulate?: boolean;
  /** The weights' dtype when `w` is a bare buffer (default f32); a MatmulWeight carries its own. */
  wDtype?: WeightDtype;
  /** Runs this kernel instead of the device's choice (the autotuner, tests). Ignored for packed weights and K not a multiple of 4. */
  variant?: MatmulVariant;
  /** X holds f16 activations (default f32): only where matmulTakesHalves says so. */
  xDtype?: FloatDtype;
  /** Y is written as f16 activations (default f32; N even): only where matmulTakesHalves says so. */
  yDtype?: FloatDtype;
}

/**
 * Whether matmul() reads and writes f16 activations for this shape, in every kernel family: the vec4 kernels do
 * (matmul_x_f16.wgsl, matmul_y_f16.wgsl), so K must be a multiple of 4 (the scalar kernel reads f32 only) and,
 * for f16 Y, N even.
 */
export function matmulTakesHalves(K: number, N: number): boolean {
  return K % 4 === 0 && N % 2 === 0;
}

/**
 * Reorders f16 W[N, K] (nn.Linear [out, in], f16 bits) into matmul_packed.wgsl's layout
 * [⌈N/24⌉][K/4][24][4]: for each 24-row column tile and each 4 values of K, the tile's 24 rows side by
 * side; rows past N are zero. K must be a multiple of 4.
 */
export function packMatmulWeights(w: Uint16Array, N: number, K: number): Uint16Array {
  const K4 = K / 4,
    tiles = Math.ceil(N / PACKED_TILE_COLS);
  const out = new Uint16Array(tiles * K4 * PACKED_TILE_COLS * 4);
  // Moved as 32-bit words, two halves each (fewer moves than by element): ~30 ms per 4096×1024 on one core.
  const src =
    w.byteOffset % 4 === 0 ? new Uint32Array(w.buffer, w.byteOffset, w.length / 2) : new Uint32Array(w.slice().buffer);
  const dst = new Uint32Array(out.buffer);
  for (let n = 0; n < N; n++) {
    const tileBase = Math.floor(n / PACKED_TILE_COLS) * K4 * PACKED_TILE_COLS,
      inTile = n % PACKED_TILE_COLS;
    for (let k4 = 0, from = n * K4 * 2; k4 < K4; k4++, from += 2) {
      const to = 2 * (tileBase + k4 * PACKED_TILE_COLS + inTile);
      dst[to] = src[from]!;
      dst[to + 1] = src[from + 1]!;
    }
  }
  return out;
}

/**
 * Uploads matmul weights W[N, K] (f32, or f16 bits as a Uint16Array) for matmul(), laid out as the scope's
 * kernel policy runs them (KernelPolicy.matmulWeightLayout: f16 packed for matmul_packed.wgsl under the
 * cpu-subgroup family, else [N, K]).
 */
export function uploadMatmulWeights(
  scope: Scope,
  label: string,
  w: Float32Array | Uint16Array,
  N: number,
  K: number,
): MatmulWeight {
  const dtype: WeightDtype = w instanceof Uint16Array ? 'f16' : 'f32';
  const packed = scope.policy.matmulWeightLayout(dtype, K) === 'packed';
  const buffer = scope.storage(label, packed ? packMatmulWeights(w as Uint16Array, N, K) : w);
  return { buffer, packed, family: scope.policy.family, dtype, N, K };
}

/** The kernel (shader name without .wgsl) that runs a matmul variant; profiles and dispatches name it so. */
export function matmulKernelName(variant: MatmulVariant): string {
  return matmulLaunch(variant, 'f32').spec.kernel;
}

/**
 * Y[M,N] = X[M,K]·W[N,K]ᵀ (+bias) (→activation) (+Y), W in nn.Linear [out, in] layout, or f16
 * packed by uploadMatmulWeights (then matmul_packed.wgsl). The kernel for other weights is the autotuner's
 * measured choice for this device and shape when there is one, else the built-in rule (both in
 * tuning.ts: defaultMatmulVariant); K not a multiple of 4 always takes the scalar kernel.
 */
export function matmul(scope: Scope, label: string, a: MatmulArgs): Promise<Dispatch> {
  const weight = isMatmulWeight(a.w) ? a.w : undefined;
  if (weight && (weight.N !== a.N || weight.K !== a.K))
    throw new Error(`${label}: weights are ${weight.N}×${weight.K}, but the matmul is N=${a.N}, K=${a.K}`);
  if (weight && a.wDtype !== undefined && a.wDtype !== weight.dtype)
    throw new Error(`${label}: weights are ${weight.dtype}, but wDtype is ${a.wDtype}`);
  // Packed weights only run under the family that packs them: the plan's policy decides the layout.
  if (weight && weight.packed !== (scope.policy.matmulWeightLayout(weight.dtype, weight.K) === 'packed'))
    throw new Error(
      `${label}: weights were laid out for the ${weight.family} kernels, but this plan runs the ${scope.policy.family} kernels`,
    );
  const wType = weight?.dtype ?? a.wDtype ?? 'f32';
  const io: MatmulIo = { x: a.xDtype ?? 'f32', y: a.yDtype ?? 'f32' };
  // f16 X or Y needs a vec4 kernel (K a multiple of 4); f16 Y needs whole pairs of columns (N even).
  const halves = io.x === 'f16' || io.y === 'f16';
  if ((halves && a.K % 4 !== 0) || (io.y === 'f16' && a.N % 2 !== 0))
    throw new Error(`${label}: f16 activations need K a multiple of 4 and, for f16 Y, N even`);
  const args = { x: a.x, w: weight?.buffer ?? (a.w as GPUBuffer), bias: a.bias ?? scope.gpu.zeros, y: a.y };
  const flags = matmulFlags({ bias: a.bias !== undefined, activation: a.activation, accumulate: a.accumulate });
  const cost = {
    flops: 2 * a.M * a.N * a.K,
    bytes: bytesOf(io.x) * a.M * a.K + bytesOf(io.y) * a.M * a.N + bytesOf(wType) * a.N * a.K,
  };
  const launch = weight?.packed
    ? // Columns are fixed by the packing; rows follow the rule's small-M choice.
      packedMatmulLaunch(subgroup8Rows(a.M), io)
    : a.K % 4 !== 0
      ? scalarMatmulLaunch(wType)
      : chosenLaunch(scope.policy, label, a, wType, io);
  return dispatchMatmul(scope, launch, label, args, { M: a.M, N: a.N, K: a.K, flags }, cost);
}

/**
 * One matmul launch dispatched as given (no choice made): what matmul() ends in, and how tests and the kernel
 * ladder run each variant directly. `w` must be laid out as the launch reads it (packed for matmul_packed).
 */
export function dispatchMatmul(
  scope: Scope,
  launch: MatmulLaunch,
  label: string,
  args: { x: GPUBuffer; w: GPUBuffer; y: GPUBuffer; bias?: GPUBuffer },
  shape: { M: number; N: number; K: number; flags: number },
  cost: DispatchCost = {},
): Promise<Dispatch> {
  const { M, N, K, flags } = shape;
  // Every matmul's Params is M, N, flags and K (the scalar kernel) or K/4 (the vec4 kernels).
  return dispatchKernel(
    scope,
    launch.spec,
    label,
    { ...args, bias: args.bias ?? scope.gpu.zeros },
    { M, N, K, K4: K / 4, flags },
    launch.defines,
    matmulWorkgroups(launch.tile, M, N),
    cost,
  );
}

const bytesOf = (dtype: FloatDtype): number => (dtype === 'f16' ? 2 : 4);

/** The launch of the caller's variant, else the tuner's choice for this shape (its activation dtypes included), else the built-in rule's. */
function chosenLaunch(
  policy: KernelPolicy,
  label: string,
  a: MatmulArgs,
  wType: WeightDtype,
  io: MatmulIo,
): MatmulLaunch {
  // A caller's variant is not a planned shape: only without one is the shape asked of (and recorded by) the tuning.
  const variant =
    a.variant ??
    tuningOf(policy).choose({
      M: a.M,
      N: a.N,
      K: a.K,
      wDtype: wType,
      ...(io.x === 'f16' ? { xDtype: io.x } : {}),
      ...(io.y === 'f16' ? { yDtype: io.y } : {}),
    }) ??
    defaultMatmulVariant(policy, a.M, io.x);
  const sub = parseSubgroupVariant(variant);
  if (sub?.lanes === 8 && !subgroupsOf8(policy))
    throw new Error(`${label}: matmul variant ${variant} needs subgroups of 8-16 lanes`);
  if (sub?.lanes === 4 && !subgroupsOf4(policy))
    throw new Error(`${label}: matmul variant ${variant} needs subgroups of 4 lanes`);
  if (sub?.lanes === 16 && !subgroupsOf16(policy))
    throw new Error(`${label}: matmul variant ${variant} needs subgroups of 16 lanes`);
  return matmulLaunch(variant, wType, io);
}

/** X [M, K] and Y [M, N] in their dtypes (the weights are checked against N and K when matmul() runs). */
export const matmulOperands: OperandRule<MatmulArgs> = (a) => ({
  x: floatOperand(a.xDtype ?? 'f32', a.M, a.K),
  y: floatOperand(a.yDtype ?? 'f32', a.M, a.N),
});
