import { uniformWords, type Dispatch, type Gpu } from '../runtime/gpu.js';
import { shaderPipeline, type ShaderDefines } from './shader.js';
import {
  bindingBuffers,
  ELEMENTWISE_OPS,
  matmulFlags,
  matmulLaunch,
  matmulWorkgroups,
  OTHER_SPECS,
  PACKED_TILE_COLS,
  packedMatmulLaunch,
  parseSubgroupVariant,
  scalarMatmulLaunch,
  uniformValues,
  type Activation,
  type BindingArgs,
  type ElementwiseOp,
  type KernelSpec,
  type MatmulLaunch,
  type UniformValues,
} from './spec.js';
import {
  defaultMatmulVariant,
  subgroup8Rows,
  subgroupsOf8,
  subgroupsOf16,
  tuningOf,
  type MatmulVariant,
  type WeightDtype,
} from './tuning.js';

export type { MatmulVariant, WeightDtype } from './tuning.js';
export type { Activation, ElementwiseOp, KernelSpec } from './spec.js';
export { kernelReads, kernelSpec, kernelWrites } from './spec.js';

/** Buffers made for one recorded program (uniforms, scratch), destroyed together with it. */
export class Scope {
  readonly buffers: GPUBuffer[] = [];
  constructor(readonly gpu: Gpu) {}

  uniform(label: string, values: readonly (number | { f: number })[]): GPUBuffer {
    const buffer = this.gpu.uniformBuffer(`${label}.params`, uniformWords(values));
    this.buffers.push(buffer);
    return buffer;
  }

  storage(label: string, data: ArrayBufferView | number): GPUBuffer {
    const buffer = this.gpu.storageBuffer(label, data);
    this.buffers.push(buffer);
    return buffer;
  }

  destroy(): void {
    for (const b of this.buffers) this.gpu.destroyBuffer(b);
    this.buffers.length = 0;
  }
}

/**
 * One dispatch of a kernel: its buffers and uniform words laid out as its spec declares (spec.ts), so the
 * order matches the shader's bindings and `struct Params` by construction.
 */
async function dispatch<S extends KernelSpec>(
  scope: Scope,
  spec: S,
  label: string,
  args: BindingArgs<S>,
  uniforms: UniformValues<S>,
  defines: ShaderDefines,
  workgroups: [number, number, number],
  cost: { flops?: number; bytes?: number } = {},
): Promise<Dispatch> {
  const pipeline = await shaderPipeline(scope.gpu, spec.shader, defines);
  const buffers = [...bindingBuffers(spec, args), scope.uniform(label, uniformValues(spec, uniforms))];
  return {
    label,
    kernel: spec.kernel,
    pipeline,
    bindGroup: scope.gpu.bindGroup(label, pipeline, buffers),
    workgroups,
    ...cost,
  };
}

/** Splits a workgroup count over x and y when it passes the 65535 per-dimension limit. */
function spread(count: number): [number, number] {
  return count <= 65535 ? [count, 1] : [65535, Math.ceil(count / 65535)];
}

/**
 * Matmul weights as uploadMatmulWeights made them: `packed` ones are f16 in matmul_packed.wgsl's layout,
 * the others W[N, K] rows in `dtype`. Pass one only to matmul() with this N and K.
 */
export interface MatmulWeight {
  readonly buffer: GPUBuffer;
  readonly packed: boolean;
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
 * Uploads matmul weights W[N, K] (f32, or f16 bits as a Uint16Array) for matmul(). f16 weights are
 * packed for matmul_packed.wgsl where matmul() would run the subgroup kernel (llvmpipe); f32 weights and
 * other devices keep [N, K] (packing f32 measured no steady gain).
 */
export function uploadMatmulWeights(
  scope: Scope,
  label: string,
  w: Float32Array | Uint16Array,
  N: number,
  K: number,
): MatmulWeight {
  const dtype: WeightDtype = w instanceof Uint16Array ? 'f16' : 'f32';
  const packed = dtype === 'f16' && K % 4 === 0 && subgroupsOf8(scope.gpu);
  const buffer = scope.storage(label, packed ? packMatmulWeights(w as Uint16Array, N, K) : w);
  return { buffer, packed, dtype, N, K };
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
  const wType = weight?.dtype ?? a.wDtype ?? 'f32';
  const args = { x: a.x, w: weight?.buffer ?? (a.w as GPUBuffer), bias: a.bias ?? scope.gpu.zeros, y: a.y };
  const flags = matmulFlags({ bias: a.bias !== undefined, activation: a.activation, accumulate: a.accumulate });
  const cost = {
    flops: 2 * a.M * a.N * a.K,
    bytes: 4 * (a.M * a.K + a.M * a.N) + (wType === 'f16' ? 2 : 4) * a.N * a.K,
  };
  const launch = weight?.packed
    ? // Columns are fixed by the packing; rows follow the rule's small-M choice.
      packedMatmulLaunch(subgroup8Rows(a.M))
    : a.K % 4 !== 0
      ? scalarMatmulLaunch(wType)
      : chosenLaunch(scope.gpu, label, a, wType);
  // Every matmul's Params is M, N, flags and K (the scalar kernel) or K/4 (the vec4 kernels).
  const params = { M: a.M, N: a.N, K: a.K, K4: a.K / 4, flags };
  return dispatch(
    scope,
    launch.spec,
    label,
    args,
    params,
    launch.defines,
    matmulWorkgroups(launch.tile, a.M, a.N),
    cost,
  );
}

/** The launch of the caller's variant, else the tuner's choice for this shape, else the built-in rule's. */
function chosenLaunch(gpu: Gpu, label: string, a: MatmulArgs, wType: WeightDtype): MatmulLaunch {
  const variant =
    a.variant ?? tuningOf(gpu).choose({ M: a.M, N: a.N, K: a.K, wDtype: wType }) ?? defaultMatmulVariant(gpu, a.M);
  const sub = parseSubgroupVariant(variant);
  if (sub?.lanes === 8 && !subgroupsOf8(gpu))
    throw new Error(`${label}: matmul variant ${variant} needs subgroups of 8-16 lanes`);
  if (sub?.lanes === 16 && !subgroupsOf16(gpu))
    throw new Error(`${label}: matmul variant ${variant} needs subgroups of 16 lanes`);
  return matmulLaunch(variant, wType);
}

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
}

/**
 * Rows per workgroup of layernorm_subgroup.wgsl: 4 shares each gain/shift load among 4 rows (measured
 * ~1.7× faster at 2056×1024 on llvmpipe), but below ~1000 rows the extra workgroups of 1 row each
 * measured as fast or faster.
 */
const layerNormRowsPerWorkgroup = (rows: number): number => (rows >= 1024 ? 4 : 1);

/**
 * Row-wise LayerNorm. Picks the subgroup kernel (8 lanes per row, sums by subgroupAdd) where the device
 * has subgroups of 8 (llvmpipe) and cols is a multiple of 4, else the workgroup-reduction kernel.
 */
export function layerNorm(scope: Scope, label: string, a: LayerNormArgs): Promise<Dispatch> {
  const args = { x: a.x, gain: a.gain, shift: a.shift, y: a.y };
  const params = { rows: a.rows, cols: a.cols, in_row_stride: a.inRowStride ?? 1, eps: a.eps ?? 1e-5 };
  const cost = { bytes: 8 * a.rows * a.cols };
  if (a.cols % 4 === 0 && subgroupsOf8(scope.gpu)) {
    const rowsPerWorkgroup = layerNormRowsPerWorkgroup(a.rows);
    const [gx, gy] = spread(Math.ceil(a.rows / rowsPerWorkgroup));
    return dispatch(
      scope,
      OTHER_SPECS.layernorm_subgroup,
      label,
      args,
      params,
      { ROWS: rowsPerWorkgroup },
      [gx, gy, 1],
      cost,
    );
  }
  const [gx, gy] = spread(a.rows);
  return dispatch(scope, OTHER_SPECS.layernorm, label, args, params, {}, [gx, gy, 1], cost);
}

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
}

/**
 * attention_tile.wgsl gives each lane HEAD_DIM/8 output dims of 8 queries, so the head dim must be a
 * multiple of 32; CLIP's is 64, and larger ones would spill more registers (not measured; they keep the
 * portable kernel).
 */
const ATTENTION_MAX_SUBGROUP_HEAD_DIM = 64;

/**
 * Multi-head scaled-dot-product attention (online softmax). Picks the subgroup kernel (scores as an 8×24
 * matmul tile per key block, ~28% faster on llvmpipe than keeping queries in lanes) where the device has
 * subgroups of 8-16 lanes and the head dim suits it, else the one-query-per-invocation kernel.
 */
export function attention(scope: Scope, label: string, a: AttentionArgs): Promise<Dispatch> {
  if (a.headDim % 4 !== 0) throw new Error(`attention: head dim ${a.headDim} is not a multiple of 4`);
  const width = a.heads * a.headDim;
  const pairs = a.causal ? (a.seq * (a.seq + 1)) / 2 : a.seq * a.seq;
  const args = { qkv: a.qkv, out: a.out };
  const params = { T: a.seq, W: width, causal: a.causal ? 1 : 0, scale: 1 / Math.sqrt(a.headDim) };
  const cost = { flops: 4 * a.batch * a.heads * pairs * a.headDim, bytes: 4 * a.batch * a.seq * width * 4 };
  if (a.headDim % 32 === 0 && a.headDim <= ATTENTION_MAX_SUBGROUP_HEAD_DIM && subgroupsOf8(scope.gpu)) {
    return dispatch(
      scope,
      OTHER_SPECS.attention_tile,
      label,
      args,
      params,
      { HEAD_DIM: a.headDim },
      [Math.ceil(a.seq / 8), a.heads, a.batch],
      cost,
    );
  }
  return dispatch(
    scope,
    OTHER_SPECS.attention,
    label,
    args,
    params,
    { HEAD_DIM: a.headDim },
    [Math.ceil(a.seq / 64), a.heads, a.batch],
    cost,
  );
}

/** Y = op(X): the activations on their own (the model fuses them into matmuls). */
export function elementwise(
  scope: Scope,
  label: string,
  a: { x: GPUBuffer; y: GPUBuffer; n: number; op: ElementwiseOp },
): Promise<Dispatch> {
  const [gx, gy] = spread(Math.ceil(a.n / 64));
  return dispatch(
    scope,
    OTHER_SPECS.elementwise,
    label,
    { x: a.x, y: a.y },
    { n: a.n, op: ELEMENTWISE_OPS[a.op] },
    {},
    [gx, gy, 1],
    { bytes: 8 * a.n },
  );
}

/** A slice of rows of an embedding table that fits in one storage binding. */
export interface TableChunk {
  buffer: GPUBuffer;
  rowOffset: number;
  rows: number;
}

/** Y[r] = table[ids[r]] + pos[r mod T], one dispatch per table chunk. */
export function embedTokens(
  scope: Scope,
  label: string,
  a: {
    ids: GPUBuffer;
    chunks: readonly TableChunk[];
    pos: GPUBuffer;
    y: GPUBuffer;
    rows: number;
    seq: number;
    width: number;
    wDtype?: WeightDtype;
  },
): Promise<Dispatch[]> {
  return Promise.all(
    a.chunks.map((chunk, i) =>
      dispatch(
        scope,
        OTHER_SPECS.embed_tokens,
        `${label}.chunk${i}`,
        { ids: a.ids, chunks: chunk.buffer, pos: a.pos, y: a.y },
        { rows: a.rows, T: a.seq, width: a.width, row_offset: chunk.rowOffset, chunk_rows: chunk.rows },
        { W_TYPE: a.wDtype ?? 'f32' },
        [Math.ceil(a.width / 64), a.rows, 1],
        { bytes: 12 * a.rows * a.width },
      ),
    ),
  );
}

/** im2col for a P×P stride-P convolution: pixels [B,3,S,S] → patches [B·G², 3·P·P]. */
export function patchify(
  scope: Scope,
  label: string,
  a: { pixels: GPUBuffer; patches: GPUBuffer; batch: number; patch: number; grid: number; imageSize: number },
): Promise<Dispatch> {
  const rows = a.batch * a.grid * a.grid;
  const [gy, gz] = spread(rows);
  return dispatch(
    scope,
    OTHER_SPECS.patchify,
    label,
    { pixels: a.pixels, patches: a.patches },
    { B: a.batch, P: a.patch, G: a.grid, image: a.imageSize },
    {},
    [Math.ceil((3 * a.patch * a.patch) / 64), gy, gz],
    { bytes: 8 * rows * 3 * a.patch * a.patch },
  );
}

/** [class_embedding; patch embeddings] + positional embedding → [B·T, width]. */
export function visionTokens(
  scope: Scope,
  label: string,
  a: {
    patchEmbed: GPUBuffer;
    classEmbedding: GPUBuffer;
    pos: GPUBuffer;
    y: GPUBuffer;
    batch: number;
    seq: number;
    width: number;
  },
): Promise<Dispatch> {
  const [gy, gz] = spread(a.batch * a.seq);
  return dispatch(
    scope,
    OTHER_SPECS.vision_tokens,
    label,
    { patchEmbed: a.patchEmbed, classEmbedding: a.classEmbedding, pos: a.pos, y: a.y },
    { B: a.batch, T: a.seq, width: a.width },
    {},
    [Math.ceil(a.width / 64), gy, gz],
    { bytes: 12 * a.batch * a.seq * a.width },
  );
}

/** Y[i] = X[index[i]] for rows of `width` floats. */
export function gatherRows(
  scope: Scope,
  label: string,
  a: { x: GPUBuffer; index: GPUBuffer; y: GPUBuffer; rows: number; width: number },
): Promise<Dispatch> {
  return dispatch(
    scope,
    OTHER_SPECS.gather_rows,
    label,
    { x: a.x, index: a.index, y: a.y },
    { rows: a.rows, width: a.width },
    {},
    [Math.ceil(a.width / 64), a.rows, 1],
    { bytes: 8 * a.rows * a.width },
  );
}

/** Y[b] = the mean of X[b·T + t] over t in [first, T), rows of `width` floats (open_clip's avg pool). */
export function meanRows(
  scope: Scope,
  label: string,
  a: { x: GPUBuffer; y: GPUBuffer; batch: number; seq: number; width: number; first: number },
): Promise<Dispatch> {
  if (!(a.first < a.seq)) throw new Error(`${label}: no rows to average (first ${a.first}, seq ${a.seq})`);
  return dispatch(
    scope,
    OTHER_SPECS.mean_rows,
    label,
    { x: a.x, y: a.y },
    { B: a.batch, T: a.seq, width: a.width, first: a.first },
    {},
    [Math.ceil(a.width / 64), a.batch, 1],
    { bytes: 4 * a.batch * (a.seq + 1) * a.width },
  );
}

/**
 * Recomputes the last query row of each sequence over only the keys `allowed` marks ([B·T] u32, 1 = attend),
 * overwriting that row of `out` (CoCa's appended class token; run after the causal attention).
 */
export function attentionLastRow(
  scope: Scope,
  label: string,
  a: { qkv: GPUBuffer; allowed: GPUBuffer; out: GPUBuffer; batch: number; seq: number; heads: number; headDim: number },
): Promise<Dispatch> {
  const width = a.heads * a.headDim;
  return dispatch(
    scope,
    OTHER_SPECS.attention_last_row,
    label,
    { qkv: a.qkv, allowed: a.allowed, out: a.out },
    { T: a.seq, W: width, D: a.headDim, scale: 1 / Math.sqrt(a.headDim) },
    {},
    [Math.ceil(a.headDim / 64), a.heads, a.batch],
    { flops: 4 * a.batch * a.seq * width * a.headDim, bytes: 4 * a.batch * a.seq * 2 * width * a.headDim },
  );
}
