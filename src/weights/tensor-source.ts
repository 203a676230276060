import { UserError } from '../errors.js';

/** Tensor element types whylesion reads: IEEE float32, IEEE float16 and bfloat16, little-endian. */
export type DType = 'F32' | 'F16' | 'BF16';

export const DTYPE_BYTES: Readonly<Record<DType, number>> = { F32: 4, F16: 2, BF16: 2 };

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
}

/** A named set of tensors read one at a time, so a 1.7 GB checkpoint never sits in memory whole. */
export interface TensorSource {
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /** Reads one tensor converted to float32 (into `out` when given, which must have the right length). */
  readF32(name: string, out?: Float32Array): Promise<Float32Array>;
  /** Reads one tensor as raw IEEE f16 bits (converting F32/BF16 with round-to-nearest-even), for f16 GPU storage. */
  readF16(name: string, out?: Uint16Array): Promise<Uint16Array>;
  close(): Promise<void>;
}

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
      throw new UserError(`${this.what} ends early (wanted bytes ${position}..${position + into.length} of ${this.bytes.length}); re-download it.`);
    }
    into.set(this.bytes.subarray(position, position + into.length));
  }

  async close(): Promise<void> {}
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

// ---- Exact conversions between float formats ----

let f16Table: Float32Array | undefined;

/** All 65536 f16 values as f32 (exact: every f16, subnormals, infinities and NaNs included, is an f32). */
function halfToFloatTable(): Float32Array {
  if (f16Table) return f16Table;
  const table = new Float32Array(65536);
  const bits = new Uint32Array(table.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0x1f) {
      bits[h] = sign | 0x7f800000 | (mantissa << 13);
    } else if (exponent !== 0) {
      bits[h] = sign | ((exponent + 112) << 23) | (mantissa << 13);
    } else {
      // Zero or subnormal: mantissa × 2^-24, exact in f32 (no NaN here, so going through a number is safe).
      table[h] = (sign ? -1 : 1) * mantissa * 2 ** -24;
    }
  }
  f16Table = table;
  return table;
}

export function f16BitsToF32(src: Uint16Array, out: Float32Array): void {
  // Copy bits, not numbers: V8's optimized code may canonicalize NaN payloads when floats pass through registers.
  const table = new Uint32Array(halfToFloatTable().buffer);
  const outBits = new Uint32Array(out.buffer, out.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) outBits[i] = table[src[i]];
}

export function bf16BitsToF32(src: Uint16Array, out: Float32Array): void {
  const outBits = new Uint32Array(out.buffer, out.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) outBits[i] = src[i] << 16;
}

/** f32 bits -> f16 bits, round-to-nearest-even; NaNs keep sign and top payload bits as NumPy does. */
export function f32BitsToF16Bits(f: number): number {
  const sign = (f >>> 16) & 0x8000;
  const exponent = (f >>> 23) & 0xff;
  const mantissa = f & 0x7fffff;
  if (exponent === 0xff) {
    if (mantissa === 0) return sign | 0x7c00;
    const payload = 0x7c00 | (mantissa >>> 13);
    return sign | (payload === 0x7c00 ? 0x7c01 : payload);
  }
  const halfExponent = exponent - 112;
  if (halfExponent >= 0x1f) return sign | 0x7c00; // overflow to infinity
  if (halfExponent <= 0) {
    // Result is subnormal (or zero): shift the full significand into place and round.
    if (halfExponent < -10) return sign; // below half the smallest subnormal, rounds to zero
    const significand = mantissa | 0x800000;
    const shift = 14 - halfExponent;
    const kept = significand >>> shift;
    const rest = significand & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    const roundUp = rest > halfway || (rest === halfway && (kept & 1) === 1);
    return sign | (kept + (roundUp ? 1 : 0));
  }
  const kept = (halfExponent << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  const roundUp = rest > 0x1000 || (rest === 0x1000 && (kept & 1) === 1);
  // A carry out of the mantissa bumps the exponent, up to infinity, which is the right answer.
  return sign | (kept + (roundUp ? 1 : 0));
}

export function f32ToF16Bits(src: Float32Array, out: Uint16Array): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToF16Bits(bits[i]);
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
    protected readonly what: string,
  ) {
    this.tensors = new Map([...placed].map(([name, t]) => [name, { name, dtype: t.dtype, shape: t.shape }]));
  }

  private lookup(name: string): PlacedTensor {
    const tensor = this.placed.get(name);
    if (!tensor) throw new UserError(`${this.what} has no tensor named '${name}'; check that it is a checkpoint for this model.`);
    return tensor;
  }

  private stagingFor(bytes: number): Uint8Array {
    if (this.staging.length < bytes) this.staging = new Uint8Array(bytes);
    return this.staging;
  }

  /** Reads the tensor's raw elements in chunks of whole elements, handing each chunk and its element index on. */
  private async forEachChunk(tensor: PlacedTensor, handle: (raw: Uint8Array, firstElement: number) => void): Promise<void> {
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
      for (let i = 0; i < halves.length; i++) result[first + i] = f32BitsToF16Bits(halves[i] << 16);
    });
    return result;
  }

  async close(): Promise<void> {
    await this.access.close();
  }
}

function checkOut<T extends Float32Array | Uint16Array>(out: T | undefined, count: number, name: string): T | undefined {
  if (out && out.length !== count) throw new Error(`output buffer for ${name} has ${out.length} elements, tensor has ${count}`);
  return out;
}
