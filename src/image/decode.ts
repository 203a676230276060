/**
 * Decodes image bytes into Pillow's mode for that file, so that resizing happens where Pillow does it.
 * JPEG goes through mozjpeg (bit-identical to Pillow's libjpeg-turbo), WebP through libwebp (Pillow's own
 * decoder); the other formats through the
 * platform's decoder (jimp on Node and Deno, the browser's own in a page), whose RGBA output is folded back
 * into the mode read from the header.
 */
import { UserError } from '../errors.js';
import { readImageHeader, type ImageHeader, type ImageLimits, type PillowMode } from './header.js';
import { decodeJpegRgba } from './jpeg.js';
import { decodeWebpRgba } from './webp.js';
import { platform } from '../platform/index.js';
import type { RgbaBitmap } from '../platform/types.js';

/**
 * A decoded image in Pillow's mode. `data` interleaves the mode's channels: "1" and "L" one (0..255),
 * "LA" two, "RGB" three, "RGBA" four, "P" three (the palette colours already looked up: NEAREST
 * resizing picks the same pixels either way), "I" one 32-bit channel (16-bit grayscale PNG samples).
 * CMYK JPEGs come back as "RGB" (see decodeImage).
 */
export type DecodedImage =
  | { width: number; height: number; mode: Exclude<PillowMode, 'I' | 'CMYK'>; data: Uint8Array }
  | { width: number; height: number; mode: 'I'; data: Int32Array };

export const MODE_CHANNELS: Record<Exclude<PillowMode, 'I' | 'CMYK'>, number> = {
  '1': 1,
  L: 1,
  LA: 2,
  P: 3,
  RGB: 3,
  RGBA: 4,
};

/** Pillow's mode data from an RGBA bitmap. */
function fromRgba(bitmap: RgbaBitmap, header: ImageHeader): DecodedImage {
  const { width, height } = bitmap;
  const pixels = width * height;
  const rgba = bitmap.data;
  if (header.mode === 'I') {
    const data = new Int32Array(pixels);
    for (let i = 0; i < pixels; i++) data[i] = rgba[i * 4]!;
    return { width, height, mode: 'I', data };
  }
  // Pillow reads 16-bit RGB(A)/LA PNG samples by their high byte.
  const shift = header.bitDepth === 16 ? 8 : 0;
  const mode = header.mode === 'CMYK' ? 'RGB' : header.mode;
  const picks: Record<typeof mode, number[]> = {
    '1': [0],
    L: [0],
    LA: [0, 3],
    P: [0, 1, 2],
    RGB: [0, 1, 2],
    RGBA: [0, 1, 2, 3],
  };
  const channels = picks[mode];
  const data = new Uint8Array(pixels * channels.length);
  // pngjs zeroes the colour of tRNS-keyed pixels; Pillow keeps L/RGB colours as stored and ignores the key.
  const key =
    header.transparentColor && header.bitDepth <= 8
      ? header.transparentColor.map((v) => Math.floor((v * 255) / ((1 << header.bitDepth) - 1) + 0.5))
      : undefined;
  for (let i = 0; i < pixels; i++) {
    const keyed = key !== undefined && rgba[i * 4 + 3] === 0;
    for (let c = 0; c < channels.length; c++) {
      data[i * channels.length + c] = keyed ? key[Math.min(c, key.length - 1)]! : rgba[i * 4 + channels[c]!]! >> shift;
    }
  }
  return { width, height, mode, data };
}

/**
 * Decodes PNG, JPEG, GIF, BMP, TIFF or WebP bytes into Pillow's mode, refusing images above the pixel limit
 * (Pillow's by default) from their header, before decoding. No EXIF rotation is applied (open_clip applies
 * none). `name` names the input in error messages. CMYK JPEGs are decoded by the platform's decoder (jimp's
 * JavaScript one on Node) and converted to RGB there: they are close to, not identical with, Pillow (which
 * resizes in CMYK and uses libjpeg-turbo's IDCT).
 */
export async function decodeImage(
  bytes: Uint8Array,
  name = 'the image',
  limits: ImageLimits = {},
): Promise<DecodedImage> {
  return decodeWithHeader(bytes, readImageHeader(bytes, name, limits), name);
}

/** decodeImage for a header already read (and checked against the limits). */
export async function decodeWithHeader(bytes: Uint8Array, header: ImageHeader, name: string): Promise<DecodedImage> {
  const bitmap =
    header.format === 'jpeg' && header.mode !== 'CMYK'
      ? await decodeJpegRgba(bytes, name)
      : header.format === 'webp'
        ? await decodeWebpRgba(bytes, name)
        : await platform.decodeOtherFormat(bytes, header, name);
  if (bitmap.width !== header.width || bitmap.height !== header.height) {
    throw new UserError(
      `${name} decoded to ${bitmap.width}x${bitmap.height} but its header says ${header.width}x${header.height}; re-export it.`,
    );
  }
  return fromRgba(bitmap, header);
}
