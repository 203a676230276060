import type { ClipConfig } from '../model/config.js';
import { clipSchema, type TensorSpec } from '../model/schema.js';
import type { TensorData } from './safetensors.js';
import { f32ToF16Bits, type DType, type TensorInfo } from './tensor-source.js';

/**
 * Synthetic open_clip checkpoints: every tensor of the schema (model/schema.ts), filled with seeded random values
 * drawn as its init says.
 *
 * Randomness: each tensor has its own stream, so tensors can be produced in any order, one at a time. The stream's
 * 128-bit state comes from splitmix32 seeded with FNV-1a(tensor name) mixed with the seed; the generator is
 * xoshiro128** and normals come from the Box-Muller transform (both outputs used).
 */

function splitmix32(state: number): [number, number] {
  const next = (state + 0x9e3779b9) | 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return [next, (z ^ (z >>> 15)) >>> 0];
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) hash = Math.imul(hash ^ byte, 0x01000193);
  return hash >>> 0;
}

/** Fills `out` with normal(0, std) values from xoshiro128** seeded for (seed, name). */
export function fillNormal(out: Float32Array, seed: number, name: string, std: number): void {
  let mix = fnv1a(name) ^ Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(Math.floor(seed / 2 ** 32), 0x85ebca77);
  const word = (): number => {
    let w: number;
    [mix, w] = splitmix32(mix);
    return w;
  };
  let s0 = word();
  let s1 = word();
  let s2 = word();
  let s3 = word();
  if ((s0 | s1 | s2 | s3) === 0) s0 = 1; // the all-zero state is xoshiro's only fixed point
  const next = (): number => {
    const product = Math.imul(s1, 5);
    const result = Math.imul((product << 7) | (product >>> 25), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = (s3 << 11) | (s3 >>> 21);
    return result;
  };
  for (let i = 0; i < out.length; i += 2) {
    const u1 = (next() + 1) / 4294967296; // in (0, 1], so the log is finite
    const u2 = next() / 4294967296;
    const radius = std * Math.sqrt(-2 * Math.log(u1));
    out[i] = radius * Math.cos(2 * Math.PI * u2);
    if (i + 1 < out.length) out[i + 1] = radius * Math.sin(2 * Math.PI * u2);
  }
}

function synthesize(spec: TensorSpec, seed: number, shape: readonly number[]): Float32Array {
  const { mean, std } = spec.init;
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  if (std > 0) fillNormal(out, seed, spec.name, std);
  if (mean !== 0) for (let i = 0; i < out.length; i++) out[i]! += mean;
  return out;
}

/** One synthetic tensor as float32, initialised as the schema says for `name`. */
export function synthesizeTensor(cfg: ClipConfig, seed: number, name: string, shape: readonly number[]): Float32Array {
  const spec = clipSchema(cfg).tensors.find((s) => s.name === name);
  if (!spec) throw new Error(`${name} is not a tensor of the open_clip layout`);
  return synthesize(spec, seed, shape);
}

/** The whole layout as lazily generated tensors, for streaming into writeSafetensors. */
export function synthesizeCheckpoint(
  cfg: ClipConfig,
  seed: number,
  dtype: Extract<DType, 'F32' | 'F16'>,
): (TensorInfo & { data: () => TensorData })[] {
  return clipSchema(cfg).tensors.map((spec) => ({
    name: spec.name,
    dtype,
    shape: [...spec.shape],
    data: () => {
      const values = synthesize(spec, seed, spec.shape);
      if (dtype === 'F32') return values;
      const bits = new Uint16Array(values.length);
      f32ToF16Bits(values, bits);
      return bits;
    },
  }));
}
