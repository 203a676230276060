import { UserError } from '../errors.js';
import {
  DTYPE_BYTES,
  bf16BitsToF32,
  elementCount,
  f16BitsToF32,
  f32BitsToF16Bits,
  f32ToF16Bits,
  type TensorInfo,
  type TensorSource,
} from '../model/tensor-source.js';

export {
  DTYPE_BYTES,
  bf16BitsToF32,
  elementCount,
  f16BitsToF32,
  f32BitsToF16Bits,
  f32ToF16Bits,
} from '../model/tensor-source.js';
export type { DType, TensorInfo, TensorSource } from '../model/tensor-source.js';

/** Positioned reads over a file or a buffer; the only thing the format parsers need from the platform. */
export interface RandomAccess {
  readonly size: number;
  /** Fills `into` with the bytes at `position`; throws a UserError when the source ends first. */
  read(position: number, into: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** RandomAccess over bytes already in memory (tests, Deno, fetched files). */
export class BytesAccess implements RandomAccess {
  constructor(
    private readonly bytes: Uint8Array,
    private readonly what = 'the buffer',
  ) {}

  get size(): number {
    return this.bytes.length;
  }

  async read(position: number, into: Uint8Array): Promise<void> {
    if (position < 0 || position + into.length > this.bytes.length) {
      throw new UserError(
        `${this.what} ends early (wanted bytes ${position}..${position + into.length} of ${this.bytes.length}); re-download it.`,
      );
    }
    into.set(this.bytes.subarray(position, position + into.length));
  }

  async close(): Promise<void> {}
}

// ---- A TensorSource over tensors at known byte positions ----

export interface PlacedTensor extends TensorInfo {
  /** Absolute byte position of the first element in the RandomAccess. */
  position: number;
}

/** Conversions go through a staging buffer of at most this many bytes, so huge tensors are read in pieces. */
const STAGING_BYTES = 16 * 1024 * 1024;

/** Reads contiguous little-endian tensors from a RandomAccess, converting chunk by chunk. */
export class PlacedTensorSource implements TensorSource {
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  private staging = new Uint8Array(0);

  constructor(
    protected readonly access: RandomAccess,
    private readonly placed: ReadonlyMap<string, PlacedTensor>,
    readonly what: string,
  ) {
    this.tensors = new Map([...placed].map(([name, t]) => [name, { name, dtype: t.dtype, shape: t.shape }]));
  }

  private lookup(name: string): PlacedTensor {
    const tensor = this.placed.get(name);
    if (!tensor)
      throw new UserError(`${this.what} has no tensor named '${name}'; check that it is a checkpoint for this model.`);
    return tensor;
  }

  private stagingFor(bytes: number): Uint8Array {
    if (this.staging.length < bytes) this.staging = new Uint8Array(bytes);
    return this.staging;
  }

  /** Reads the tensor's raw elements in chunks of whole elements, handing each chunk and its element index on. */
  private async forEachChunk(
    tensor: PlacedTensor,
    handle: (raw: Uint8Array, firstElement: number) => void,
  ): Promise<void> {
    const size = DTYPE_BYTES[tensor.dtype];
    const total = elementCount(tensor.shape) * size;
    const chunkBytes = Math.min(total, STAGING_BYTES);
    const staging = this.stagingFor(chunkBytes);
    for (let done = 0; done < total; done += chunkBytes) {
      const chunk = staging.subarray(0, Math.min(chunkBytes, total - done));
      await this.access.read(tensor.position + done, chunk);
      handle(chunk, done / size);
    }
  }

  /** The tensor's stored elements unconverted: Float32Array for F32, raw bits for F16 / BF16. */
  async readRaw(name: string): Promise<Float32Array | Uint16Array> {
    const tensor = this.lookup(name);
    const count = elementCount(tensor.shape);
    const result = tensor.dtype === 'F32' ? new Float32Array(count) : new Uint16Array(count);
    await this.access.read(tensor.position, new Uint8Array(result.buffer));
    return result;
  }

  async readF32(name: string, out?: Float32Array): Promise<Float32Array> {
    const tensor = this.lookup(name);
    const count = elementCount(tensor.shape);
    const result = checkOut(out, count, name) ?? new Float32Array(count);
    if (tensor.dtype === 'F32') {
      await this.access.read(tensor.position, new Uint8Array(result.buffer, result.byteOffset, count * 4));
      return result;
    }
    const convert = tensor.dtype === 'F16' ? f16BitsToF32 : bf16BitsToF32;
    await this.forEachChunk(tensor, (raw, first) => {
      const halves = new Uint16Array(raw.buffer, raw.byteOffset, raw.length / 2);
      convert(halves, result.subarray(first, first + halves.length));
    });
    return result;
  }

  async readF16(name: string, out?: Uint16Array): Promise<Uint16Array> {
    const tensor = this.lookup(name);
    const count = elementCount(tensor.shape);
    const result = checkOut(out, count, name) ?? new Uint16Array(count);
    if (tensor.dtype === 'F16') {
      await this.access.read(tensor.position, new Uint8Array(result.buffer, result.byteOffset, count * 2));
      return result;
    }
    if (tensor.dtype === 'F32') {
      await this.forEachChunk(tensor, (raw, first) => {
        const floats = new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4);
        f32ToF16Bits(floats, result.subarray(first, first + floats.length));
      });
      return result;
    }
    // BF16 bits shifted up are the exact f32 bits, so this rounds only once.
    await this.forEachChunk(tensor, (raw, first) => {
      const halves = new Uint16Array(raw.buffer, raw.byteOffset, raw.length / 2);
      for (let i = 0; i < halves.length; i++) result[first + i] = f32BitsToF16Bits(halves[i]! << 16);
    });
    return result;
  }

  async close(): Promise<void> {
    await this.access.close();
  }
}

function checkOut<T extends Float32Array | Uint16Array>(
  out: T | undefined,
  count: number,
  name: string,
): T | undefined {
  if (out && out.length !== count)
    throw new Error(`output buffer for ${name} has ${out.length} elements, tensor has ${count}`);
  return out;
}
