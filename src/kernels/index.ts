import { uniformWords, type Dispatch, type Gpu } from '../runtime/gpu.js';
import { shaderPipeline } from './shader.js';
import { defaultMatmulVariant, parseSubgroupVariant, subgroupsOf8, subgroupsOf16, tuningOf, type MatmulVariant, type WeightDtype } from './tuning.js';

export type { MatmulVariant, WeightDtype } from './tuning.js';

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

export type Activation = 'none' | 'gelu' | 'quick_gelu';
const ACTIVATION_BITS: Record<Activation, number> = { none: 0, gelu: 1, quick_gelu: 2 };

async function dispatch(
  scope: Scope,
  kernel: string,
  shader: string,
  defines: Record<string, string | number>,
  label: string,
  buffers: GPUBuffer[],
  params: readonly (number | { f: number })[],
  workgroups: [number, number, number],
  cost: { flops?: number; bytes?: number } = {},
): Promise<Dispatch> {
  const pipeline = await shaderPipeline(scope.gpu, shader, defines);
  const bindGroup = scope.gpu.bindGroup(label, pipeline, [...buffers, scope.uniform(label, params)]);
  return { label, kernel, pipeline, bindGroup, workgroups, ...cost };
}

/** Splits a workgroup count over x and y when it passes the 65535 per-dimension limit. */
function spread(count: number): [number, number] {
  return count <= 65535 ? [count, 1] : [65535, Math.ceil(count / 65535)];
}

export interface MatmulArgs {
  x: GPUBuffer; w: GPUBuffer; y: GPUBuffer; bias?: GPUBuffer;
  M: number; N: number; K: number;
  activation?: Activation;
  /** Y += result (fused residual add). */
  accumulate?: boolean;
  wDtype?: WeightDtype;
  /** Runs this kernel instead of the device's choice (the autotuner, tests). Ignored for packed weights and K not a multiple of 4. */
  variant?: MatmulVariant;
}

/** Output tile edge of matmul_subgroup.wgsl: 24×24 (3 X rows and 3 W rows per lane) measured best on llvmpipe. */
const SUBGROUP_TILE = 24;

/** f16 matmul weights uploaded by uploadMatmulWeights in matmul_packed.wgsl's layout; matmul() reads them with it. */
const packedWeights = new WeakSet<GPUBuffer>();

/**
 * Reorders f16 W[N, K] (nn.Linear [out, in], f16 bits) into matmul_packed.wgsl's layout
 * [⌈N/24⌉][K/4][24][4]: for each 24-row column tile and each 4 values of K, the tile's 24 rows side by
 * side; rows past N are zero. K must be a multiple of 4.
 */
export function packMatmulWeights(w: Uint16Array, N: number, K: number): Uint16Array {
  const K4 = K / 4, tiles = Math.ceil(N / SUBGROUP_TILE);
  const out = new Uint16Array(tiles * K4 * SUBGROUP_TILE * 4);
  // Moved as 32-bit words, two halves each (fewer moves than by element): ~30 ms per 4096×1024 on one core.
  const src = w.byteOffset % 4 === 0 ? new Uint32Array(w.buffer, w.byteOffset, w.length / 2) : new Uint32Array(w.slice().buffer);
  const dst = new Uint32Array(out.buffer);
  for (let n = 0; n < N; n++) {
    const tileBase = Math.floor(n / SUBGROUP_TILE) * K4 * SUBGROUP_TILE, inTile = n % SUBGROUP_TILE;
    for (let k4 = 0, from = n * K4 * 2; k4 < K4; k4++, from += 2) {
      const to = 2 * (tileBase + k4 * SUBGROUP_TILE + inTile);
      dst[to] = src[from]; dst[to + 1] = src[from + 1];
    }
  }
  return out;
}

/**
 * Uploads matmul weights W[N, K] (f32, or f16 bits as a Uint16Array) for matmul(). f16 weights are
 * packed for matmul_packed.wgsl where matmul() would run the subgroup kernel (llvmpipe); f32 weights and
 * other devices keep [N, K] (packing f32 measured no steady gain). Pass the returned buffer only as
 * matmul()'s `w` with this N, K and dtype.
 */
export function uploadMatmulWeights(scope: Scope, label: string, w: Float32Array | Uint16Array, N: number, K: number): GPUBuffer {
  if (!(w instanceof Uint16Array) || K % 4 !== 0 || !subgroupsOf8(scope.gpu)) return scope.storage(label, w);
  const buffer = scope.storage(label, packMatmulWeights(w, N, K));
  packedWeights.add(buffer);
  return buffer;
}

/**
 * Y[M,N] = X[M,K]·W[N,K]ᵀ (+bias) (→activation) (+Y), W in nn.Linear [out, in] layout, or f16
 * packed by uploadMatmulWeights (then matmul_packed.wgsl). The kernel for other weights is the autotuner's
 * measured choice for this device and shape when there is one, else the built-in rule (both in
 * tuning.ts: defaultMatmulVariant); K not a multiple of 4 always takes the scalar kernel.
 */
/** The kernel (shader name without .wgsl) that runs a matmul variant; profiles and dispatches name it so. */
export function matmulKernelName(variant: MatmulVariant): 'matmul_subgroup' | 'matmul_tiled' | 'matmul' {
  return parseSubgroupVariant(variant) ? 'matmul_subgroup' : variant === 'tiled' ? 'matmul_tiled' : 'matmul';
}

export function matmul(scope: Scope, label: string, a: MatmulArgs): Promise<Dispatch> {
  const flags = (a.bias ? 1 : 0) | (ACTIVATION_BITS[a.activation ?? 'none'] << 1) | (a.accumulate ? 8 : 0);
  const bias = a.bias ?? scope.gpu.zeros;
  const wType = a.wDtype ?? 'f32';
  const cost = { flops: 2 * a.M * a.N * a.K, bytes: 4 * (a.M * a.K + a.M * a.N) + (wType === 'f16' ? 2 : 4) * a.N * a.K };
  const buffers = [a.x, a.w, bias, a.y];
  if (packedWeights.has(a.w)) {
    if (wType !== 'f16') throw new Error(`${label}: packed weights are f16, but wDtype is ${wType}`);
    // Columns are fixed by the packing (24 per tile); rows follow the rule's small-M choice.
    const rows = parseSubgroupVariant(defaultMatmulVariant(scope.gpu, a.M))?.rows ?? 3;
    return dispatch(scope, 'matmul_packed', 'matmul_packed.wgsl', { ROWS: rows, LANES: 8 }, label, buffers,
      [a.M, a.N, a.K / 4, flags], [Math.ceil(a.N / SUBGROUP_TILE), Math.ceil(a.M / (8 * rows)), 1], cost);
  }
  if (a.K % 4 !== 0) {
    return dispatch(scope, 'matmul_scalar', 'matmul_scalar.wgsl', { W_TYPE: wType }, label, buffers,
      [a.M, a.N, a.K, flags], [Math.ceil(a.N / 8), Math.ceil(a.M / 8), 1], cost);
  }
  const variant = a.variant ?? tuningOf(scope.gpu).choose({ M: a.M, N: a.N, K: a.K, wDtype: wType }) ?? defaultMatmulVariant(scope.gpu, a.M);
  const params = [a.M, a.N, a.K / 4, flags];
  const sub = parseSubgroupVariant(variant);
  if (sub) {
    if (sub.lanes === 8 && !subgroupsOf8(scope.gpu)) throw new Error(`${label}: matmul variant ${variant} needs subgroups of 8-16 lanes`);
    if (sub.lanes === 16 && !subgroupsOf16(scope.gpu)) throw new Error(`${label}: matmul variant ${variant} needs subgroups of 16 lanes`);
    return dispatch(scope, 'matmul_subgroup', 'matmul_subgroup.wgsl', { W_TYPE: wType, LANES: sub.lanes, ROWS: sub.rows, COLS: sub.cols }, label, buffers,
      params, [Math.ceil(a.N / (sub.lanes * sub.cols)), Math.ceil(a.M / (sub.lanes * sub.rows)), 1], cost);
  }
  if (variant === 'tiled') {
    return dispatch(scope, 'matmul_tiled', 'matmul_tiled.wgsl', { W_TYPE: wType }, label, buffers,
      params, [Math.ceil(a.N / 64), Math.ceil(a.M / 64), 1], cost);
  }
  return dispatch(scope, 'matmul', 'matmul.wgsl', { W_TYPE: wType }, label, buffers,
    params, [Math.ceil(a.N / 32), Math.ceil(a.M / 32), 1], cost);
}

export interface LayerNormArgs {
  x: GPUBuffer; gain: GPUBuffer; shift: GPUBuffer; y: GPUBuffer;
  rows: number; cols: number;
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
  const buffers = [a.x, a.gain, a.shift, a.y];
  const params = [a.rows, a.cols, a.inRowStride ?? 1, { f: a.eps ?? 1e-5 }];
  const cost = { bytes: 8 * a.rows * a.cols };
  if (a.cols % 4 === 0 && subgroupsOf8(scope.gpu)) {
    const rowsPerWorkgroup = layerNormRowsPerWorkgroup(a.rows);
    const cols4 = a.cols / 4;
    const [gx, gy] = spread(Math.ceil(a.rows / rowsPerWorkgroup));
    return dispatch(scope, 'layernorm_subgroup', 'layernorm_subgroup.wgsl',
      { COLS4: cols4, CHUNKS: Math.ceil(cols4 / 8), ROWS: rowsPerWorkgroup }, label, buffers, params, [gx, gy, 1], cost);
  }
  const [gx, gy] = spread(a.rows);
  return dispatch(scope, 'layernorm', 'layernorm.wgsl', {}, label, buffers, params, [gx, gy, 1], cost);
}

export interface AttentionArgs {
  /** [B·T, 3·heads·headDim]: q | k | v as nn.MultiheadAttention's in_proj produces. */
  qkv: GPUBuffer;
  /** [B·T, heads·headDim] */
  out: GPUBuffer;
  batch: number; seq: number; heads: number; headDim: number;
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
  const params = [a.seq, width, a.causal ? 1 : 0, { f: 1 / Math.sqrt(a.headDim) }];
  const cost = { flops: 4 * a.batch * a.heads * pairs * a.headDim, bytes: 4 * a.batch * a.seq * width * 4 };
  if (a.headDim % 32 === 0 && a.headDim <= ATTENTION_MAX_SUBGROUP_HEAD_DIM && subgroupsOf8(scope.gpu)) {
    return dispatch(scope, 'attention_tile', 'attention_tile.wgsl', { HEAD_DIM: a.headDim },
      label, [a.qkv, a.out], params, [Math.ceil(a.seq / 8), a.heads, a.batch], cost);
  }
  return dispatch(scope, 'attention', 'attention.wgsl', { HEAD_DIM: a.headDim }, label, [a.qkv, a.out], params,
    [Math.ceil(a.seq / 64), a.heads, a.batch], cost);
}

export type ElementwiseOp = 'gelu' | 'quick_gelu';
const ELEMENTWISE_OPS: Record<ElementwiseOp, number> = { gelu: 0, quick_gelu: 1 };

/** Y = op(X): the activations on their own (the model fuses them into matmuls). */
export function elementwise(
  scope: Scope, label: string, a: { x: GPUBuffer; y: GPUBuffer; n: number; op: ElementwiseOp },
): Promise<Dispatch> {
  const [gx, gy] = spread(Math.ceil(a.n / 64));
  return dispatch(scope, 'elementwise', 'elementwise.wgsl', {}, label, [a.x, a.y],
    [a.n, ELEMENTWISE_OPS[a.op]], [gx, gy, 1], { bytes: 8 * a.n });
}

/** A slice of rows of an embedding table that fits in one storage binding. */
export interface TableChunk { buffer: GPUBuffer; rowOffset: number; rows: number }

/** Y[r] = table[ids[r]] + pos[r mod T], one dispatch per table chunk. */
export function embedTokens(
  scope: Scope, label: string,
  a: { ids: GPUBuffer; chunks: readonly TableChunk[]; pos: GPUBuffer; y: GPUBuffer; rows: number; seq: number; width: number; wDtype?: WeightDtype },
): Promise<Dispatch[]> {
  return Promise.all(a.chunks.map((chunk, i) =>
    dispatch(scope, 'embed_tokens', 'embed_tokens.wgsl', { W_TYPE: a.wDtype ?? 'f32' }, `${label}.chunk${i}`,
      [a.ids, chunk.buffer, a.pos, a.y], [a.rows, a.seq, a.width, chunk.rowOffset, chunk.rows],
      [Math.ceil(a.width / 64), a.rows, 1], { bytes: 12 * a.rows * a.width })));
}

/** im2col for a P×P stride-P convolution: pixels [B,3,S,S] → patches [B·G², 3·P·P]. */
export function patchify(
  scope: Scope, label: string,
  a: { pixels: GPUBuffer; patches: GPUBuffer; batch: number; patch: number; grid: number; imageSize: number },
): Promise<Dispatch> {
  const rows = a.batch * a.grid * a.grid;
  const [gy, gz] = spread(rows);
  return dispatch(scope, 'patchify', 'patchify.wgsl', {}, label, [a.pixels, a.patches],
    [a.batch, a.patch, a.grid, a.imageSize], [Math.ceil((3 * a.patch * a.patch) / 64), gy, gz],
    { bytes: 8 * rows * 3 * a.patch * a.patch });
}

/** [class_embedding; patch embeddings] + positional embedding → [B·T, width]. */
export function visionTokens(
  scope: Scope, label: string,
  a: { patchEmbed: GPUBuffer; classEmbedding: GPUBuffer; pos: GPUBuffer; y: GPUBuffer; batch: number; seq: number; width: number },
): Promise<Dispatch> {
  const [gy, gz] = spread(a.batch * a.seq);
  return dispatch(scope, 'vision_tokens', 'vision_tokens.wgsl', {}, label, [a.patchEmbed, a.classEmbedding, a.pos, a.y],
    [a.batch, a.seq, a.width], [Math.ceil(a.width / 64), gy, gz], { bytes: 12 * a.batch * a.seq * a.width });
}

/** Y[i] = X[index[i]] for rows of `width` floats. */
export function gatherRows(
  scope: Scope, label: string, a: { x: GPUBuffer; index: GPUBuffer; y: GPUBuffer; rows: number; width: number },
): Promise<Dispatch> {
  return dispatch(scope, 'gather_rows', 'gather_rows.wgsl', {}, label, [a.x, a.index, a.y],
    [a.rows, a.width], [Math.ceil(a.width / 64), a.rows, 1], { bytes: 8 * a.rows * a.width });
}
