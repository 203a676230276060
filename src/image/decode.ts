/**
 * Decodes image bytes into Pillow's mode for that file, so that resizing happens where Pillow does it.
 * JPEG goes through mozjpeg (bit-identical to Pillow's libjpeg-turbo); the other formats through jimp,
 * whose RGBA output is folded back into the mode read from the header.
 */
import { Jimp } from 'jimp';
import { UserError } from '../errors.js';
import { readImageHeader, type ImageHeader, type PillowMode } from './header.js';
import { copyToArrayBuffer, decodeJpegRgba } from './jpeg.js';

/**
 * A decoded image in Pillow's mode. `data` interleaves the mode's channels: "1" and "L" one (0..255),
 * "LA" two, "RGB" three, "RGBA" four, "P" three (the palette colours already looked up: NEAREST
 * resizing picks the same pixels either way), "I" one 32-bit channel (16-bit grayscale PNG samples).
 * CMYK JPEGs come back as "RGB" (see decodeImage).
 */
export type DecodedImage =
  | { width: number; height: number; mode: Exclude<PillowMode, 'I' | 'CMYK'>; data: Uint8Array }
  | { width: number; height: number; mode: 'I'; data: Int32Array };

export const MODE_CHANNELS: Record<Exclude<PillowMode, 'I' | 'CMYK'>, number> = { '1': 1, L: 1, LA: 2, P: 3, RGB: 3, RGBA: 4 };

interface RgbaBitmap {
  width: number;
  height: number;
  /** RGBA samples: 8-bit, or 16-bit for 16-bit PNGs (decoded without rescaling). */
  data: ArrayLike<number>;
}

async function decodeWithJimp(bytes: Uint8Array, header: ImageHeader, name: string): Promise<RgbaBitmap> {
  // pngjs rescales 16-bit samples with rounding; Pillow keeps the high byte, so ask for the raw samples.
  const options = header.bitDepth === 16 ? { 'image/png': { skipRescale: true } } : undefined;
  try {
    const image = await Jimp.fromBuffer(copyToArrayBuffer(bytes), options);
    return image.bitmap;
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new UserError(`${name} could not be decoded as ${header.format.toUpperCase()} (${why}); re-export it as PNG or JPEG.`, {
      cause: error,
    });
  }
}

/** Pillow's mode data from an RGBA bitmap. */
function fromRgba(bitmap: RgbaBitmap, header: ImageHeader): DecodedImage {
  const { width, height } = bitmap;
  const pixels = width * height;
  const rgba = bitmap.data;
  if (header.mode === 'I') {
    const data = new Int32Array(pixels);
    for (let i = 0; i < pixels; i++) data[i] = rgba[i * 4];
    return { width, height, mode: 'I', data };
  }
  // Pillow reads 16-bit RGB(A)/LA PNG samples by their high byte.
  const shift = header.bitDepth === 16 ? 8 : 0;
  const mode = header.mode === 'CMYK' ? 'RGB' : header.mode;
  const picks: Record<typeof mode, number[]> = { '1': [0], L: [0], LA: [0, 3], P: [0, 1, 2], RGB: [0, 1, 2], RGBA: [0, 1, 2, 3] };
  const channels = picks[mode];
  const data = new Uint8Array(pixels * channels.length);
  // pngjs zeroes the colour of tRNS-keyed pixels; Pillow keeps L/RGB colours as stored and ignores the key.
  const key = header.transparentColor && header.bitDepth <= 8
    ? header.transparentColor.map((v) => Math.floor((v * 255) / ((1 << header.bitDepth) - 1) + 0.5))
    : undefined;
  for (let i = 0; i < pixels; i++) {
    const keyed = key !== undefined && rgba[i * 4 + 3] === 0;
    for (let c = 0; c < channels.length; c++) {
      data[i * channels.length + c] = keyed ? key[Math.min(c, key.length - 1)] : rgba[i * 4 + channels[c]] >> shift;
    }
  }
  return { width, height, mode, data };
}

/**
 * Decodes PNG, JPEG, GIF, BMP or TIFF bytes into Pillow's mode, refusing images above Pillow's pixel
 * limit before decoding. No EXIF rotation is applied (open_clip applies none). `name` names the input in
 * error messages. CMYK JPEGs are decoded by jimp's JavaScript decoder and converted to RGB there: they are
 * close to, not identical with, Pillow (which resizes in CMYK and uses libjpeg-turbo's IDCT).
 */
export async function decodeImage(bytes: Uint8Array, name = 'the image'): Promise<DecodedImage> {
  const header = readImageHeader(bytes, name);
  const bitmap = header.format === 'jpeg' && header.mode !== 'CMYK'
    ? await decodeJpegRgba(bytes, name)
    : await decodeWithJimp(bytes, header, name);
  if (bitmap.width !== header.width || bitmap.height !== header.height) {
    throw new UserError(`${name} decoded to ${bitmap.width}x${bitmap.height} but its header says ${header.width}x${header.height}; re-export it.`);
  }
  return fromRgba(bitmap, header);
}
