/**
 * Pillow's resampling (src/libImaging/Resample.c and Geometry.c), replicated for bit-identical uint8 output.
 * Pure: no Node or DOM imports.
 */

/** Pillow's fixed-point precision for 8-bit resampling: 32 - 8 - 2 bits. */
const PRECISION_BITS = 22;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);

/** Keys' cubic with a = -0.5, written exactly as Pillow's bicubic_filter (same operation order). */
function bicubicFilter(x: number): number {
  const a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}
const BICUBIC_SUPPORT = 2.0;

interface Coefficients {
  ksize: number;
  /** Per output index: first input index, then number of taps. */
  bounds: Int32Array;
  /** Normalized weights, ksize per output index (used as is by Pillow's 32-bit path). */
  weights: Float64Array;
  /** The same weights in fixed point (Pillow's normalize_coeffs_8bpc). */
  fixed: Int32Array;
}

/** Pillow's precompute_coeffs followed by normalize_coeffs_8bpc, for the box [0, inSize]. */
function precomputeCoeffs(inSize: number, outSize: number): Coefficients {
  const scale = inSize / outSize;
  const filterscale = scale < 1.0 ? 1.0 : scale;
  // Downscaling widens the kernel by the scale factor: that is Pillow's antialiasing.
  const support = filterscale * BICUBIC_SUPPORT;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Float64Array(outSize * ksize);
  const fixed = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1.0 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C's (int) cast truncates toward zero.
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0.0;
    for (let x = 0; x < xmax; x++) {
      const w = bicubicFilter((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0.0 ? k[x]! / ww : k[x]!;
      weights[xx * ksize + x] = w;
      fixed[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, weights, fixed };
}

/** Pillow's clip8: drop the fixed-point fraction (arithmetic shift) and clamp to 0..255. */
function clip8(ss: number): number {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** ImagingResampleHorizontal_8bpc over rows [rowOffset, rowOffset + rows). */
function resampleHorizontal(
  src: Uint8Array,
  srcW: number,
  channels: number,
  rowOffset: number,
  rows: number,
  outW: number,
  c: Coefficients,
): Uint8Array {
  const out = new Uint8Array(outW * rows * channels);
  for (let yy = 0; yy < rows; yy++) {
    const rowBase = (yy + rowOffset) * srcW * channels;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = c.bounds[xx * 2]!;
      const xmax = c.bounds[xx * 2 + 1]!;
      const kBase = xx * c.ksize;
      for (let ch = 0; ch < channels; ch++) {
        let ss = HALF;
        let p = rowBase + xmin * channels + ch;
        for (let x = 0; x < xmax; x++, p += channels) ss += src[p]! * c.fixed[kBase + x]!;
        out[(yy * outW + xx) * channels + ch] = clip8(ss);
      }
    }
  }
  return out;
}

/** ImagingResampleVertical_8bpc; `bounds` are relative to the first row of `src`. */
function resampleVertical(src: Uint8Array, w: number, channels: number, outH: number, c: Coefficients): Uint8Array {
  const out = new Uint8Array(w * outH * channels);
  const stride = w * channels;
  for (let yy = 0; yy < outH; yy++) {
    const ymin = c.bounds[yy * 2]!;
    const ymax = c.bounds[yy * 2 + 1]!;
    const kBase = yy * c.ksize;
    for (let i = 0; i < stride; i++) {
      let ss = HALF;
      let p = ymin * stride + i;
      for (let y = 0; y < ymax; y++, p += stride) ss += src[p]! * c.fixed[kBase + y]!;
      out[yy * stride + i] = clip8(ss);
    }
  }
  return out;
}

/**
 * Image.resize((outW, outH), Image.BICUBIC) on an 8-bit image with interleaved channels (Pillow's
 * ImagingResampleInner): horizontal pass over only the rows the vertical pass reads, then vertical pass.
 */
export function resizeBicubicPillow(
  src: Uint8Array,
  w: number,
  h: number,
  channels: number,
  outW: number,
  outH: number,
): Uint8Array {
  if (src.length !== w * h * channels)
    throw new Error(`resizeBicubicPillow: ${src.length} bytes for ${w}x${h}x${channels}`);
  if (outW === w && outH === h) return src.slice();
  const needHorizontal = outW !== w;
  const needVertical = outH !== h;
  const horiz = precomputeCoeffs(w, outW);
  const vert = precomputeCoeffs(h, outH);
  if (!needHorizontal) return resampleVertical(src, w, channels, outH, vert);
  const yFirst = vert.bounds[0]!;
  const yLast = vert.bounds[outH * 2 - 2]! + vert.bounds[outH * 2 - 1]!;
  for (let i = 0; i < outH; i++) vert.bounds[i * 2]! -= yFirst;
  const temp = resampleHorizontal(src, w, channels, yFirst, yLast - yFirst, outW, horiz);
  return needVertical ? resampleVertical(temp, outW, channels, outH, vert) : temp;
}

/** Pillow's ROUND_UP for the 32-bit path: round half away from zero (0.5 is exact in float and double). */
function roundUp(f: number): number {
  return f >= 0.0 ? Math.floor(f + 0.5) : -Math.floor(Math.abs(f) + 0.5);
}

/**
 * Image.resize with BICUBIC on a 32-bit integer ("I") single-channel image: Pillow's 32bpc path, which
 * sums in double with the unquantized weights and rounds each pass to an integer.
 */
export function resizeBicubicPillowInt32(
  src: Int32Array,
  w: number,
  h: number,
  outW: number,
  outH: number,
): Int32Array {
  if (outW === w && outH === h) return src.slice();
  const horiz = precomputeCoeffs(w, outW);
  const vert = precomputeCoeffs(h, outH);
  let image = src;
  let width = w;
  if (outW !== w) {
    const yFirst = vert.bounds[0]!;
    const rows = vert.bounds[outH * 2 - 2]! + vert.bounds[outH * 2 - 1]! - yFirst;
    for (let i = 0; i < outH; i++) vert.bounds[i * 2]! -= yFirst;
    const temp = new Int32Array(outW * rows);
    for (let yy = 0; yy < rows; yy++) {
      for (let xx = 0; xx < outW; xx++) {
        const xmin = horiz.bounds[xx * 2]!;
        const xmax = horiz.bounds[xx * 2 + 1]!;
        let ss = 0.0;
        for (let x = 0; x < xmax; x++) ss += src[(yy + yFirst) * w + x + xmin]! * horiz.weights[xx * horiz.ksize + x]!;
        temp[yy * outW + xx] = roundUp(ss);
      }
    }
    image = temp;
    width = outW;
  }
  if (outH === h) return image;
  const out = new Int32Array(width * outH);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = vert.bounds[yy * 2]!;
    const ymax = vert.bounds[yy * 2 + 1]!;
    for (let xx = 0; xx < width; xx++) {
      let ss = 0.0;
      for (let y = 0; y < ymax; y++) ss += image[(y + ymin) * width + xx]! * vert.weights[yy * vert.ksize + y]!;
      out[yy * width + xx] = roundUp(ss);
    }
  }
  return out;
}

/** Pillow's COORD macro: negative coordinates map to -1, others truncate. */
function coord(v: number): number {
  return v < 0.0 ? -1 : Math.trunc(v);
}

/**
 * Image.resize with NEAREST (what Pillow uses for "P" and "1" images whatever filter is asked):
 * ImagingScaleAffine, including its accumulated (not recomputed) source coordinates.
 */
export function resizeNearestPillow(
  src: Uint8Array,
  w: number,
  h: number,
  channels: number,
  outW: number,
  outH: number,
): Uint8Array {
  if (outW === w && outH === h) return src.slice();
  const out = new Uint8Array(outW * outH * channels);
  const ax = w / outW;
  const ay = h / outH;
  const xin = new Int32Array(outW);
  const valid = new Uint8Array(outW);
  let xo = ax * 0.5;
  for (let x = 0; x < outW; x++) {
    const xi = coord(xo);
    if (xi >= 0 && xi < w) {
      xin[x] = xi;
      valid[x] = 1;
    }
    xo += ax;
  }
  let yo = ay * 0.5;
  for (let y = 0; y < outH; y++) {
    const yi = coord(yo);
    if (yi >= 0 && yi < h) {
      for (let x = 0; x < outW; x++) {
        if (!valid[x]) continue;
        const s = (yi * w + xin[x]!) * channels;
        const d = (y * outW + x) * channels;
        for (let ch = 0; ch < channels; ch++) out[d + ch] = src[s + ch]!;
      }
    }
    yo += ay;
  }
  return out;
}
