import type { Gpu } from '../runtime/gpu.js';
import * as K from '../kernels/index.js';
import { elementCount, f32ToF16Bits, type TensorSource } from './tensor-source.js';
import type { ClipConfig } from './config.js';
import { checkTensors } from './layout.js';

export type ComputeDtype = 'f32' | 'f16';

export interface Block {
  ln1: [GPUBuffer, GPUBuffer]; ln2: [GPUBuffer, GPUBuffer];
  inProj: GPUBuffer; inProjBias: GPUBuffer; outProj: GPUBuffer; outProjBias: GPUBuffer;
  fc: GPUBuffer; fcBias: GPUBuffer; proj: GPUBuffer; projBias: GPUBuffer;
}

export interface VisionWeights {
  conv: GPUBuffer; classEmbedding: GPUBuffer; pos: GPUBuffer;
  lnPre: [GPUBuffer, GPUBuffer]; lnPost: [GPUBuffer, GPUBuffer]; proj: GPUBuffer; blocks: Block[];
}

export interface TextWeights {
  tokenChunks: K.TableChunk[]; pos: GPUBuffer; lnFinal: [GPUBuffer, GPUBuffer]; proj: GPUBuffer; blocks: Block[];
}

export interface ClipWeights { scope: K.Scope; vision: VisionWeights; text: TextWeights; logitScale: number }

/** Uploads every weight tensor to the GPU, one tensor at a time (`dtype` f16 halves matmul weights). */
export async function uploadClipWeights(
  gpu: Gpu, config: ClipConfig, source: TensorSource, dtype: ComputeDtype,
  onTensor?: (name: string, index: number, count: number) => void,
): Promise<ClipWeights> {
  checkTensors(config, new Map([...source.tensors].map(([name, t]) => [name, t.shape])));
  const scope = new K.Scope(gpu);
  const total = source.tensors.size;
  let loaded = 0;
  const progress = (name: string): void => onTensor?.(name, ++loaded, total);
  // Every tensor passes through one reused staging buffer (writeBuffer copies it at once), so loading
  // touches no fresh host memory beyond the GPU buffers themselves.
  const staging = new Staging();
  const count = (name: string): number => elementCount(source.tensors.get(name)!.shape);
  const f32 = async (name: string): Promise<GPUBuffer> => {
    const buffer = scope.storage(name, await source.readF32(name, staging.f32(count(name))));
    progress(name);
    return buffer;
  };
  // Matmul weights in [out, in] layout, stored in the compute dtype; `transpose` turns an x@P projection into one.
  const linear = async (name: string, transpose?: [number, number]): Promise<GPUBuffer> => {
    let data: Float32Array | Uint16Array;
    if (transpose) {
      const t = transposed(await source.readF32(name, staging.f32(count(name))), transpose[0], transpose[1]);
      data = dtype === 'f16' ? toF16(t) : t;
    } else {
      data = dtype === 'f16' ? await source.readF16(name, staging.f16(count(name))) : await source.readF32(name, staging.f32(count(name)));
    }
    // [N, K] = [out, in]: conv1's [W, 3, P, P] is [W, 3·P·P]; a transposed [in, out] projection is [out, in] now.
    const shape = source.tensors.get(name)!.shape;
    const [N, Kd] = transpose ? [transpose[1], transpose[0]] : [shape[0], elementCount(shape) / shape[0]];
    const buffer = K.uploadMatmulWeights(scope, name, data, N, Kd);
    progress(name);
    return buffer;
  };
  const ln = async (prefix: string): Promise<[GPUBuffer, GPUBuffer]> => [await f32(`${prefix}.weight`), await f32(`${prefix}.bias`)];
  const blocks = async (prefix: string, layers: number): Promise<Block[]> => {
    const out: Block[] = [];
    for (let i = 0; i < layers; i++) {
      const p = `${prefix}.resblocks.${i}`;
      out.push({
        ln1: await ln(`${p}.ln_1`), ln2: await ln(`${p}.ln_2`),
        inProj: await linear(`${p}.attn.in_proj_weight`), inProjBias: await f32(`${p}.attn.in_proj_bias`),
        outProj: await linear(`${p}.attn.out_proj.weight`), outProjBias: await f32(`${p}.attn.out_proj.bias`),
        fc: await linear(`${p}.mlp.c_fc.weight`), fcBias: await f32(`${p}.mlp.c_fc.bias`),
        proj: await linear(`${p}.mlp.c_proj.weight`), projBias: await f32(`${p}.mlp.c_proj.bias`),
      });
    }
    return out;
  };
  try {
    const v = config.vision;
    const vision: VisionWeights = {
      conv: await linear('visual.conv1.weight'), // [W, 3, P, P] is already [W, 3·P·P] row-major
      classEmbedding: await f32('visual.class_embedding'),
      pos: await f32('visual.positional_embedding'),
      lnPre: await ln('visual.ln_pre'),
      blocks: await blocks('visual.transformer', v.layers),
      lnPost: await ln('visual.ln_post'),
      proj: await linear('visual.proj', [v.width, config.embedDim]),
    };
    const t = config.text;
    const text: TextWeights = {
      tokenChunks: await uploadTable(scope, source, 'token_embedding.weight', t.vocabSize, t.width, dtype, staging),
      pos: await f32('positional_embedding'),
      blocks: await blocks('transformer', t.layers),
      lnFinal: await ln('ln_final'),
      proj: await linear('text_projection', [t.width, config.embedDim]),
    };
    progress('token_embedding.weight');
    const logitScale = Math.exp((await source.readF32('logit_scale'))[0]);
    progress('logit_scale');
    return { scope, vision, text, logitScale };
  } catch (e) {
    scope.destroy();
    throw e;
  }
}

/** A growable host buffer viewed as f32 or f16 bits, reused for every tensor on its way to the GPU. */
class Staging {
  private bytes = new ArrayBuffer(0);

  private ensure(byteLength: number): ArrayBuffer {
    if (this.bytes.byteLength < byteLength) this.bytes = new ArrayBuffer(byteLength);
    return this.bytes;
  }

  f32(count: number): Float32Array {
    return new Float32Array(this.ensure(count * 4), 0, count);
  }

  f16(count: number): Uint16Array {
    return new Uint16Array(this.ensure(count * 2), 0, count);
  }
}

function transposed(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

function toF16(data: Float32Array): Uint16Array {
  const out = new Uint16Array(data.length);
  f32ToF16Bits(data, out);
  return out;
}

/** Uploads an embedding table in row chunks that each fit one storage binding. */
async function uploadTable(scope: K.Scope, source: TensorSource, name: string, rows: number, width: number, dtype: ComputeDtype, staging: Staging): Promise<K.TableChunk[]> {
  const bytesPerRow = width * (dtype === 'f16' ? 2 : 4);
  const rowsPerChunk = Math.floor(scope.gpu.limits.maxStorageBufferBindingSize / bytesPerRow);
  const table = dtype === 'f16' ? await source.readF16(name, staging.f16(rows * width)) : await source.readF32(name, staging.f32(rows * width));
  const chunks: K.TableChunk[] = [];
  for (let rowOffset = 0; rowOffset < rows; rowOffset += rowsPerChunk) {
    const n = Math.min(rowsPerChunk, rows - rowOffset);
    const slice = table.subarray(rowOffset * width, (rowOffset + n) * width);
    chunks.push({ buffer: scope.storage(`${name}[${rowOffset}:${rowOffset + n}]`, slice), rowOffset, rows: n });
  }
  return chunks;
}
