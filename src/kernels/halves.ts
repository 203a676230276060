/**
 * Exact conversions between IEEE half (and bfloat16) bits and f32: the weight loaders' (model, io) and the
 * kernels' CPU checks (the autotuner reads f16 outputs back) share them, so they live in the lowest layer
 * that needs them.
 */

/** All 65536 f16 values as f32 (exact: every f16, subnormals, infinities and NaNs included, is an f32). */
function halfToFloatTable(): Float32Array {
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
  return table;
}

/** Built once when the module loads (~1 ms): a constant, not a cache. */
const HALF_TO_FLOAT_BITS = new Uint32Array(halfToFloatTable().buffer);

export function f16BitsToF32(src: Uint16Array, out: Float32Array): void {
  // Copy bits, not numbers: V8's optimized code may canonicalize NaN payloads when floats pass through registers.
  const table = HALF_TO_FLOAT_BITS;
  const outBits = new Uint32Array(out.buffer, out.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) outBits[i] = table[src[i]!]!;
}

export function bf16BitsToF32(src: Uint16Array, out: Float32Array): void {
  const outBits = new Uint32Array(out.buffer, out.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) outBits[i] = src[i]! << 16;
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

/**
 * f32ToF16Bits's fast path covers magnitudes in f16's normal range, [2^-14, 65520) before rounding (|f32 bits|
 * in [0x38800000, 0x477ff000)): adding 0xfff plus the kept lowest bit rounds to nearest even at bit 13, a carry
 * moves into the exponent, and subtracting (127 − 15) << 23 rebiases it. Everything else (zero, subnormals,
 * overflow, Inf, NaN) takes f32BitsToF16Bits. Weights are almost all in range: 16 M random values took 1.64 ns
 * each against 6.24 (bench/README.md, sixth pass).
 */
const NORMAL_MIN = 0x38800000;
const NORMAL_END = 0x477ff000;

export function f32ToF16Bits(src: Float32Array, out: Uint16Array): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const f = bits[i]!;
    const magnitude = f & 0x7fffffff;
    if (magnitude >= NORMAL_MIN && magnitude < NORMAL_END) {
      const rounded = magnitude + 0xfff + ((magnitude >>> 13) & 1);
      out[i] = ((f >>> 16) & 0x8000) | ((rounded - 0x38000000) >>> 13);
    } else {
      out[i] = f32BitsToF16Bits(f);
    }
  }
}
