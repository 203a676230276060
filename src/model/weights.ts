import * as K from '../kernels/index.js';
import { UserError, present } from '../errors.js';
import { trace } from '../platform/trace.js';
import { elementCount, f32ToF16Bits, type TensorSource } from './tensor-source.js';
import { Staging } from './staging.js';
import type { ClipConfig } from './config.js';
import { checkTensors } from './layout.js';
import { clipSchema, TensorSpec, type LayerScaleSpec, type TensorRole } from './schema.js';

export type ComputeDtype = 'f32' | 'f16';

export interface Block {
  ln1: [GPUBuffer, GPUBuffer];
  ln2: [GPUBuffer, GPUBuffer];
  inProj: K.MatmulWeight;
  inProjBias: GPUBuffer;
  outProj: K.MatmulWeight;
  outProjBias: GPUBuffer;
  fc: K.MatmulWeight;
  fcBias: GPUBuffer;
  proj: K.MatmulWeight;
  projBias: GPUBuffer;
}

export interface VisionWeights {
  conv: K.MatmulWeight;
  classEmbedding: GPUBuffer;
  pos: GPUBuffer;
  lnPre?: [GPUBuffer, GPUBuffer];
  lnPost: [GPUBuffer, GPUBuffer];
  proj: K.MatmulWeight;
  blocks: Block[];
}

export interface TextWeights {
  tokenChunks: K.TableChunk[];
  pos: GPUBuffer;
  lnFinal: [GPUBuffer, GPUBuffer];
  proj: K.MatmulWeight;
  projBias?: GPUBuffer;
  /** embed_cls's class token as a one-row table (rowOffset 0). */
  clsEmbedding?: K.TableChunk[];
  blocks: Block[];
}

export interface ClipWeights {
  scope: K.Scope;
  vision: VisionWeights;
  text: TextWeights;
  logitScale: number;
}

/** What each role's tensor becomes once uploaded. */
interface LoadedRole {
  vector: GPUBuffer;
  'norm-gain': GPUBuffer;
  'norm-bias': GPUBuffer;
  linear: K.MatmulWeight;
  'linear-transposed': K.MatmulWeight;
  'embedding-table': K.TableChunk[];
  scalar: number;
  'layer-scale': Float32Array;
  'embedding-row': K.TableChunk[];
}

/** A schema subtree with every tensor spec replaced by what it loads as: BlockSpec becomes Block, and so on. */
type Loaded<S> =
  S extends TensorSpec<infer R extends TensorRole> ? LoadedRole[R] : { [Key in keyof S]: Loaded<S[Key]> };

/**
 * Uploads every weight tensor to the GPU, one tensor at a time (`dtype` f16 halves matmul weights); matmul
 * weights are laid out as `policy`'s kernels read them.
 */
export async function uploadClipWeights(
  policy: K.KernelPolicy,
  config: ClipConfig,
  source: TensorSource,
  dtype: ComputeDtype,
  onTensor?: (name: string, index: number, count: number) => void,
): Promise<ClipWeights> {
  checkTensors(config, new Map([...source.tensors].map(([name, t]) => [name, t.shape])));
  const schema = clipSchema(config);
  const scope = new K.Scope(policy);
  let loaded = 0;
  // Every tensor passes through one reused staging buffer (writeBuffer copies it at once), so loading
  // touches no fresh host memory beyond the GPU buffers themselves.
  const staging = new Staging();
  // Every tensor is checked for NaN/Inf as it passes through the staging buffer, so a damaged checkpoint is
  // refused at load instead of producing NaN embeddings (measured cost: bench/README.md, "load check").
  // Time spent waiting for the source's bytes, for WHYLESION_TRACE's breakdown of a load.
  let readMs = 0;
  const timedRead = async <T>(read: Promise<T>): Promise<T> => {
    const start = performance.now();
    const data = await read;
    readMs += performance.now() - start;
    return data;
  };
  const f32 = async (name: string, out?: Float32Array): Promise<Float32Array> =>
    finiteF32(source, staging, name, await timedRead(source.readF32(name, out)));
  const f16 = async (name: string, out: Uint16Array): Promise<Uint16Array> =>
    finiteF16(source, staging, name, await timedRead(source.readF16(name, out)));
  const upload = async (spec: TensorSpec): Promise<LoadedRole[TensorRole]> => {
    const { name, shape } = spec;
    const count = elementCount(shape);
    switch (spec.role) {
      case 'vector':
      case 'norm-gain':
      case 'norm-bias':
        return scope.storage(name, await f32(name, staging.f32(count)));
      case 'linear': {
        // [N, K] = [out, in]; trailing dimensions flatten into K (conv1's [W, 3, P, P] is [W, 3·P·P]).
        const data = dtype === 'f16' ? await f16(name, staging.f16(count)) : await f32(name, staging.f32(count));
        return K.uploadMatmulWeights(scope, name, data, shape[0]!, count / shape[0]!);
      }
      case 'linear-transposed': {
        const [inputs, outputs] = shape;
        if (inputs === undefined || outputs === undefined) throw new Error(`Bug: ${name} is not a matrix.`);
        const outIn = transposed(await f32(name, staging.f32(count)), inputs, outputs);
        return K.uploadMatmulWeights(
          scope,
          name,
          dtype === 'f16' ? finiteF16(source, staging, name, toF16(outIn)) : outIn,
          outputs,
          inputs,
        );
      }
      case 'embedding-table':
        return uploadTable(
          scope,
          name,
          shape[0]!,
          shape[1]!,
          dtype,
          dtype === 'f16' ? await f16(name, staging.f16(count)) : await f32(name, staging.f32(count)),
        );
      case 'scalar':
        return present((await f32(name))[0], `the value of ${name}`);
      case 'layer-scale':
        return (await f32(name)).slice();
      case 'embedding-row':
        return uploadTable(
          scope,
          name,
          1,
          count,
          dtype,
          dtype === 'f16' ? await f16(name, staging.f16(count)) : await f32(name, staging.f32(count)),
        );
    }
  };
  // LayerScale folds: a scaled weight is uploaded once both it and its gamma have been read, in whichever
  // order the file holds them (a weight read first waits as an f32 copy: one out_proj or c_proj at most).
  const foldOf = new Map<TensorSpec, LayerScaleSpec>();
  for (const fold of schema.layerScales) for (const target of [fold.weight, fold.bias]) foldOf.set(target, fold);
  const waiting = new Map<TensorSpec, Float32Array>();
  const uploadScaled = (spec: TensorSpec, data: Float32Array, gamma: Float32Array): LoadedRole[TensorRole] => {
    const [rows = 1] = spec.shape;
    const cols = data.length / rows;
    for (let r = 0; r < rows; r++) {
      const g = gamma[r]!;
      for (let i = r * cols; i < (r + 1) * cols; i++) data[i]! *= g;
    }
    if (spec.role === 'vector') return scope.storage(spec.name, data);
    const weights = dtype === 'f16' ? finiteF16(source, staging, spec.name, toF16(data)) : data;
    return K.uploadMatmulWeights(scope, spec.name, weights, rows, cols);
  };
  // Tensors upload in the order the source holds them (a safetensors file's data order), so a source read
  // front to back (an HTTP body from a server that ignores Range) serves every read; then the schema's
  // structure is assembled from what landed.
  const specs: TensorSpec[] = [];
  const collect = (node: unknown): void => {
    if (node === undefined) return;
    if (node instanceof TensorSpec) specs.push(node);
    else if (Array.isArray(node)) node.forEach(collect);
    else for (const child of Object.values(node as object)) collect(child);
  };
  collect([schema.vision, schema.text, schema.logitScale, schema.layerScales.map((fold) => fold.gamma)]);
  const fileOrder = new Map([...source.tensors.keys()].map((name, index) => [name, index]));
  specs.sort((a, b) => fileOrder.get(a.name)! - fileOrder.get(b.name)!);
  const uploaded = new Map<TensorSpec, LoadedRole[TensorRole]>();
  const assemble = <S>(node: S): Loaded<S> => {
    if (node === undefined) return undefined as unknown as Loaded<S>;
    if (node instanceof TensorSpec) return uploaded.get(node) as Loaded<S>;
    if (Array.isArray(node)) return node.map(assemble) as unknown as Loaded<S>;
    return Object.fromEntries(
      Object.entries(node as object).map(([key, child]) => [key, assemble(child)]),
    ) as Loaded<S>;
  };
  try {
    for (const spec of specs) {
      const fold = foldOf.get(spec);
      if (spec.role === 'layer-scale') {
        const gamma = (await upload(spec)) as Float32Array;
        uploaded.set(spec, gamma);
        const folds = schema.layerScales.filter((f) => f.gamma === spec);
        for (const target of folds.flatMap((f) => [f.weight, f.bias])) {
          const data = waiting.get(target);
          if (data) uploaded.set(target, uploadScaled(target, data, gamma));
          waiting.delete(target);
        }
      } else if (fold) {
        const data = await f32(spec.name, staging.f32(elementCount(spec.shape)));
        const gamma = uploaded.get(fold.gamma) as Float32Array | undefined;
        if (gamma) uploaded.set(spec, uploadScaled(spec, data, gamma));
        else waiting.set(spec, data.slice());
      } else {
        uploaded.set(spec, await upload(spec));
      }
      onTensor?.(spec.name, ++loaded, schema.tensors.length);
    }
    const vision: VisionWeights = assemble(schema.vision);
    const text: TextWeights = assemble(schema.text);
    // open_clip stores the log of the logit scale.
    const logLogitScale = assemble(schema.logitScale);
    const logitScale = Math.exp(logLogitScale);
    trace('weights uploaded', `(${loaded} tensors; ${readMs.toFixed(0)} ms of it reading the source)`);
    if (!Number.isFinite(logitScale)) {
      throw new UserError(
        `${checkpointName(source)}: logit_scale is ${logLogitScale}, whose exp() (the similarity temperature) is not a finite number; the checkpoint is damaged, re-download it.`,
      );
    }
    return { scope, vision, text, logitScale };
  } catch (e) {
    scope.destroy();
    throw e;
  }
}

function checkpointName(source: TensorSource): string {
  return source.what ?? 'the checkpoint';
}

function finiteF32(source: TensorSource, staging: Staging, name: string, data: Float32Array): Float32Array {
  const at = staging.firstNonFiniteF32(data);
  if (at >= 0) {
    throw new UserError(
      `${checkpointName(source)}: tensor ${name} holds ${Number.isNaN(data[at]) ? 'NaN' : 'Inf'} at element ${at}; the checkpoint is damaged, re-download it.`,
    );
  }
  return data;
}

function finiteF16(source: TensorSource, staging: Staging, name: string, bits: Uint16Array): Uint16Array {
  const at = staging.firstNonFiniteF16(bits);
  if (at >= 0) {
    const stored = source.tensors.get(name)?.dtype;
    // An f32 value beyond ±65504 becomes Inf in f16: not damage, but this model cannot run in f16.
    const why =
      stored === 'F16' || (bits[at]! & 0x3ff) !== 0
        ? `holds ${(bits[at]! & 0x3ff) !== 0 ? 'NaN' : 'Inf'} at element ${at}; the checkpoint is damaged, re-download it.`
        : `has a value at element ${at} beyond f16's range (or Inf); load it with dtype f32, or re-download it if it is damaged.`;
    throw new UserError(`${checkpointName(source)}: tensor ${name} ${why}`);
  }
  return bits;
}

function transposed(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
  return out;
}

function toF16(data: Float32Array): Uint16Array {
  const out = new Uint16Array(data.length);
  f32ToF16Bits(data, out);
  return out;
}

/** Uploads an embedding table in row chunks that each fit one storage binding. */
function uploadTable(
  scope: K.Scope,
  name: string,
  rows: number,
  width: number,
  dtype: ComputeDtype,
  table: Float32Array | Uint16Array,
): K.TableChunk[] {
  const bytesPerRow = width * (dtype === 'f16' ? 2 : 4);
  const rowsPerChunk = Math.floor(scope.gpu.limits.maxStorageBufferBindingSize / bytesPerRow);
  const chunks: K.TableChunk[] = [];
  for (let rowOffset = 0; rowOffset < rows; rowOffset += rowsPerChunk) {
    const n = Math.min(rowsPerChunk, rows - rowOffset);
    const slice = table.subarray(rowOffset * width, (rowOffset + n) * width);
    chunks.push({ buffer: scope.storage(`${name}[${rowOffset}:${rowOffset + n}]`, slice), rowOffset, rows: n });
  }
  return chunks;
}
