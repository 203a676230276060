/**
 * torchvision's Resize(int) size rule, CenterCrop, Pillow's mode conversions to RGB, EXIF transposes and
 * ToTensor + Normalize, all on interleaved uint8 pixels. Pure: no Node or DOM imports.
 */
import { MODE_CHANNELS, type DecodedImage } from './decode.js';
import { resizeBicubicPillow, resizeBicubicPillowInt32, resizeNearestPillow } from './resample.js';

/** torchvision's _compute_resized_output_size for Resize(size: int): shorter side to size, the other int(size * long / short). */
export function resizedSize(width: number, height: number, size: number): { width: number; height: number } {
  const [short, long] = width <= height ? [width, height] : [height, width];
  const newLong = Math.trunc((size * long) / short);
  return width <= height ? { width: size, height: newLong } : { width: newLong, height: size };
}

/** Python's round() of x.5 ties to even, as torchvision's int(round((dim - crop) / 2.0)) does. */
function pythonRound(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/**
 * center_crop offsets for a crop no larger than the image: torchvision's int(round((dim - crop) / 2.0)), or
 * transformers' (dim - crop) // 2 ('floor'), which is one pixel less when dim - crop is 3 mod 4.
 */
export function centerCropOffsets(
  width: number,
  height: number,
  cropW: number,
  cropH: number,
  rounding: 'torchvision' | 'floor' = 'torchvision',
): { left: number; top: number } {
  const offset = rounding === 'floor' ? (d: number) => Math.floor(d / 2) : (d: number) => pythonRound(d / 2.0);
  return { left: offset(width - cropW), top: offset(height - cropH) };
}

/** torchvision's CenterCrop on interleaved pixels (the crop must fit inside the image). */
export function centerCrop(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  cropW: number,
  cropH: number,
  rounding: 'torchvision' | 'floor' = 'torchvision',
): Uint8Array {
  if (cropW > width || cropH > height)
    throw new Error(`centerCrop: ${cropW}x${cropH} does not fit in ${width}x${height}`);
  const { left, top } = centerCropOffsets(width, height, cropW, cropH, rounding);
  const out = new Uint8Array(cropW * cropH * channels);
  const rowBytes = cropW * channels;
  for (let y = 0; y < cropH; y++) {
    const start = ((y + top) * width + left) * channels;
    out.set(src.subarray(start, start + rowBytes), y * rowBytes);
  }
  return out;
}

/** Pillow's MULDIV255: round(a * b / 255) in integers. */
function mulDiv255(a: number, b: number): number {
  const tmp = a * b + 128;
  return ((tmp >> 8) + tmp) >> 8;
}

/** Pillow's RGBA -> RGBa (and LA -> La): colour channels multiplied by alpha, the last channel is alpha. */
export function premultiply(src: Uint8Array, channels: number): Uint8Array {
  const out = src.slice();
  for (let p = 0; p < out.length; p += channels) {
    const alpha = out[p + channels - 1]!;
    for (let c = 0; c < channels - 1; c++) out[p + c] = mulDiv255(out[p + c]!, alpha);
  }
  return out;
}

/**
 * Pillow's RGBa -> RGBA (and La -> LA) followed by convert("RGB"), which drops alpha:
 * colour = 255 * colour / alpha in integers, clipped, except for alpha 0 or 255.
 */
function unpremultiplyToRgb(src: Uint8Array, channels: number): Uint8Array {
  const pixels = src.length / channels;
  const out = new Uint8Array(pixels * 3);
  for (let i = 0; i < pixels; i++) {
    const alpha = src[i * channels + channels - 1]!;
    for (let c = 0; c < 3; c++) {
      const v = src[i * channels + Math.min(c, channels - 2)]!;
      out[i * 3 + c] = alpha === 0 || alpha === 255 ? v : Math.min(255, Math.trunc((255 * v) / alpha));
    }
  }
  return out;
}

function grayToRgb(gray: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(gray.length * 3);
  for (let i = 0; i < gray.length; i++) {
    // Pillow's i2rgb clamps 32-bit values; 8-bit values pass unchanged.
    const v = gray[i]! <= 0 ? 0 : gray[i]! >= 255 ? 255 : gray[i]!;
    out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = v;
  }
  return out;
}

/**
 * Image.resize((width, height), BICUBIC) in the image's own mode, then convert("RGB"), as open_clip's
 * Resize + _convert_to_rgb do: "P"/"1" use NEAREST, "RGBA"/"LA" are resized premultiplied.
 */
export function resizeToRgb(image: DecodedImage, width: number, height: number): Uint8Array {
  const { width: w, height: h } = image;
  if (image.mode === 'I') return grayToRgb(resizeBicubicPillowInt32(image.data, w, h, width, height));
  const channels = MODE_CHANNELS[image.mode];
  switch (image.mode) {
    case '1':
      return grayToRgb(resizeNearestPillow(image.data, w, h, channels, width, height));
    case 'P':
      return resizeNearestPillow(image.data, w, h, channels, width, height);
    case 'L':
      return grayToRgb(resizeBicubicPillow(image.data, w, h, channels, width, height));
    case 'RGB':
      return resizeBicubicPillow(image.data, w, h, channels, width, height);
    case 'LA':
    case 'RGBA':
      // Unchanged size: no resize (torchvision skips it), so no premultiply round trip either.
      if (width === w && height === h) return dropAlpha(image.data, channels);
      return unpremultiplyToRgb(
        resizeBicubicPillow(premultiply(image.data, channels), w, h, channels, width, height),
        channels,
      );
  }
}

function dropAlpha(src: Uint8Array, channels: number): Uint8Array {
  const pixels = src.length / channels;
  const out = new Uint8Array(pixels * 3);
  for (let i = 0; i < pixels; i++) {
    for (let c = 0; c < 3; c++) out[i * 3 + c] = src[i * channels + Math.min(c, channels - 2)]!;
  }
  return out;
}

/**
 * Applies an EXIF orientation (1..8) the way PIL.ImageOps.exif_transpose does, on interleaved pixels.
 * Orientations 5..8 swap width and height.
 */
export function applyExifOrientation<T extends Uint8Array | Int32Array>(
  src: T,
  width: number,
  height: number,
  channels: number,
  orientation: number,
): { data: T; width: number; height: number } {
  if (orientation < 2 || orientation > 8) return { data: src, width, height };
  const swap = orientation >= 5;
  const outW = swap ? height : width;
  const outH = swap ? width : height;
  const out = new (src.constructor as new (n: number) => T)(src.length);
  // Source coordinates of output pixel (x, y) for each orientation.
  const sourceOf: Record<number, (x: number, y: number) => [number, number]> = {
    2: (x, y) => [width - 1 - x, y],
    3: (x, y) => [width - 1 - x, height - 1 - y],
    4: (x, y) => [x, height - 1 - y],
    5: (x, y) => [y, x],
    6: (x, y) => [y, height - 1 - x],
    7: (x, y) => [width - 1 - y, height - 1 - x],
    8: (x, y) => [width - 1 - y, x],
  };
  const map = sourceOf[orientation]!;
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const [sx, sy] = map(x, y);
      const s = (sy * width + sx) * channels;
      const d = (y * outW + x) * channels;
      for (let c = 0; c < channels; c++) out[d + c] = src[s + c]!;
    }
  }
  return { data: out, width: outW, height: outH };
}

/**
 * ToTensor then Normalize, in float32 like torch: ((v / 255) - mean) / std, each step rounded to float32; CHW out.
 * With `rescaleFactor`, transformers' rescale instead: v * factor in float64, then rounded to float32.
 */
export function normalizeToChw(
  rgb: Uint8Array,
  width: number,
  height: number,
  mean: readonly number[],
  std: readonly number[],
  rescaleFactor?: number,
): Float32Array {
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const m = Math.fround(mean[c]!);
    const s = Math.fround(std[c]!);
    // 256 possible inputs per channel: tabulate.
    const table = new Float32Array(256);
    for (let v = 0; v < 256; v++) {
      const scaled = rescaleFactor === undefined ? Math.fround(v / 255) : Math.fround(v * rescaleFactor);
      table[v] = Math.fround(Math.fround(scaled - m) / s);
    }
    for (let i = 0; i < plane; i++) out[c * plane + i] = table[rgb[i * 3 + c]!]!;
  }
  return out;
}
