/** The tensor interface the model reads weights through, element types and exact float conversions. */

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
  /** Names the checkpoint in error messages (e.g. its file name). */
  readonly what?: string;
  /** Reads one tensor converted to float32 (into `out` when given, which must have the right length). */
  readF32(name: string, out?: Float32Array): Promise<Float32Array>;
  /** Reads one tensor as raw IEEE f16 bits (converting F32/BF16 with round-to-nearest-even), for f16 GPU storage. */
  readF16(name: string, out?: Uint16Array): Promise<Uint16Array>;
  close(): Promise<void>;
}

/**
 * Index of the first NaN or infinity in f32 data, or -1. Reads the bits (exponent all ones), which is
 * several times faster than Number.isFinite on each float: this runs over every weight at load.
 */
export function firstNonFiniteF32(data: Float32Array): number {
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  const n = bits.length;
  for (let i = 0; i < n; i++) {
    if ((bits[i]! & 0x7f800000) === 0x7f800000) return i;
  }
  return -1;
}

/** Index of the first NaN or infinity in IEEE f16 bits, or -1. */
export function firstNonFiniteF16(bits: Uint16Array): number {
  const n = bits.length;
  for (let i = 0; i < n; i++) {
    if ((bits[i]! & 0x7c00) === 0x7c00) return i;
  }
  return -1;
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

// Exact conversions between float formats (kernels/halves.ts, which the autotuner also reads halves with).
export { bf16BitsToF32, f16BitsToF32, f32BitsToF16Bits, f32ToF16Bits } from '../kernels/halves.js';
