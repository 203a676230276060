/**
 * Reads what Pillow would call an image's format, size and mode from its header bytes, before any
 * decoding, so that oversized images are refused without allocating and the resize runs in Pillow's mode.
 * Pure: no Node or DOM imports.
 */
import { UserError } from '../errors.js';

/** Pillow modes this module reproduces. "P" and "1" are resized with NEAREST; "I" is 32-bit grayscale. */
export type PillowMode = '1' | 'L' | 'LA' | 'P' | 'RGB' | 'RGBA' | 'I' | 'CMYK';

export interface ImageHeader {
  format: 'png' | 'jpeg' | 'gif' | 'bmp' | 'tiff' | 'webp';
  width: number;
  height: number;
  mode: PillowMode;
  /** PNG sample depth in bits (8 for other formats). */
  bitDepth: number;
  /** PNG tRNS colour key of an L or RGB image, as samples of bitDepth bits. */
  transparentColor?: number[];
  /** EXIF orientation 1..8 of a JPEG (1 when absent). */
  exifOrientation: number;
}

/** Pillow's Image.MAX_IMAGE_PIXELS: int(1024 * 1024 * 1024 // 4 // 3). */
export const MAX_IMAGE_PIXELS = 89_478_485;

/** The formats readImageHeader knows, in words, for messages. */
export const SUPPORTED_FORMATS = 'PNG, JPEG, GIF, BMP, TIFF or WebP';

export interface ImageLimits {
  /**
   * The most pixels an image may have, decoded or once resized for the model (whichever is larger: for a very
   * wide or tall image the resized one is, since the shorter side is scaled up to the model's size). Pillow's
   * MAX_IMAGE_PIXELS (89,478,485) by default. A guard against decompression bombs: a 177-byte PNG can declare
   * 100000x1 pixels, which resized to 224 on its short side would be 22,400,000x224.
   */
  maxImagePixels?: number;
}

/** The pixel limit in force, checked as a positive whole number. */
export function maxImagePixels(limits: ImageLimits = {}): number {
  const limit = limits.maxImagePixels ?? MAX_IMAGE_PIXELS;
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new UserError(
      `The image pixel limit ${limit} is not a positive whole number; pass e.g. ${MAX_IMAGE_PIXELS} (Pillow's default).`,
    );
  }
  return limit;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(bytes: Uint8Array, prefix: number[]): boolean {
  return bytes.length >= prefix.length && prefix.every((b, i) => bytes[i] === b);
}

function ascii(bytes: Uint8Array, start: number, length: number): string {
  return String.fromCharCode(...bytes.subarray(start, start + length));
}

/**
 * Identifies the format and reads size and mode; throws UserError for empty, foreign or damaged headers and
 * for images above the pixel limit, before anything is decoded or allocated.
 */
export function readImageHeader(bytes: Uint8Array, name: string, limits: ImageLimits = {}): ImageHeader {
  const limit = maxImagePixels(limits);
  if (bytes.length === 0) throw new UserError(`${name} is empty (0 bytes); pass a ${SUPPORTED_FORMATS} image.`);
  let header: ImageHeader;
  if (startsWith(bytes, PNG_SIGNATURE)) header = readPng(bytes, name);
  else if (startsWith(bytes, [0xff, 0xd8, 0xff])) header = readJpeg(bytes, name);
  else if (ascii(bytes, 0, 6) === 'GIF87a' || ascii(bytes, 0, 6) === 'GIF89a') header = readGif(bytes, name);
  else if (ascii(bytes, 0, 2) === 'BM') header = readBmp(bytes, name);
  else if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a]))
    header = readTiff(bytes, name);
  else if (ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 4) === 'WEBP') header = readWebp(bytes, name);
  else {
    throw new UserError(
      `${name} is not a ${SUPPORTED_FORMATS} image (unrecognized header); convert it to PNG or JPEG.`,
    );
  }
  if (!(header.width > 0 && header.height > 0)) {
    throw new UserError(`${name} declares an empty image (${header.width}x${header.height}); re-export it.`);
  }
  checkPixels(name, header.width, header.height, limit);
  return header;
}

/** Refuses an image of more pixels than the limit (decoded, or resized: see ImageLimits). */
export function checkPixels(
  name: string,
  width: number,
  height: number,
  limit: number,
  resizedTo?: { width: number; height: number },
): void {
  const what = resizedTo
    ? `${width}x${height}, which resized for the model would be ${resizedTo.width}x${resizedTo.height} = ${resizedTo.width * resizedTo.height} pixels`
    : `${width}x${height} = ${width * height} pixels`;
  const pixels = resizedTo ? resizedTo.width * resizedTo.height : width * height;
  if (pixels > limit) {
    throw new UserError(
      `${name} is ${what}, above the limit of ${limit} (a decompression-bomb guard, Pillow's MAX_IMAGE_PIXELS); ` +
        `${resizedTo ? 'crop it to a less extreme aspect ratio' : 'downscale it'} first, or raise the limit with --max-image-pixels.`,
    );
  }
}

function truncated(name: string): UserError {
  return new UserError(`${name} is truncated or damaged (its header ends early); re-download or re-export it.`);
}

function readPng(bytes: Uint8Array, name: string): ImageHeader {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 33 || ascii(bytes, 12, 4) !== 'IHDR') throw truncated(name);
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  const bitDepth = bytes[24]!;
  const colorType = bytes[25]!;
  const modes: Record<number, PillowMode> = { 0: 'L', 2: 'RGB', 3: 'P', 4: 'LA', 6: 'RGBA' };
  let mode = modes[colorType];
  if (mode === undefined) throw new UserError(`${name} has an invalid PNG colour type ${colorType}; re-export it.`);
  // Pillow opens 1-bit grayscale as "1" and 16-bit grayscale as 32-bit "I".
  if (colorType === 0 && bitDepth === 1) mode = '1';
  if (colorType === 0 && bitDepth === 16) mode = 'I';
  let transparentColor: number[] | undefined;
  for (let pos = 8; pos + 8 <= bytes.length; ) {
    const length = view.getUint32(pos);
    const type = ascii(bytes, pos + 4, 4);
    if (type === 'IDAT' || type === 'IEND') break;
    if (type === 'tRNS' && (colorType === 0 || colorType === 2) && pos + 8 + length <= bytes.length) {
      transparentColor = [];
      for (let i = 0; i + 1 < length; i += 2) transparentColor.push(view.getUint16(pos + 8 + i));
    }
    pos += 12 + length;
  }
  return { format: 'png', width, height, mode, bitDepth, transparentColor, exifOrientation: 1 };
}

const SOF_MARKERS = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

function readJpeg(bytes: Uint8Array, name: string): ImageHeader {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let exifOrientation = 1;
  let pos = 2;
  while (pos + 4 <= bytes.length) {
    if (bytes[pos] !== 0xff) throw new UserError(`${name} has a damaged JPEG marker structure; re-export it.`);
    const marker = bytes[pos + 1]!;
    if (marker === 0xff) {
      pos += 1; // fill byte
      continue;
    }
    const length = view.getUint16(pos + 2);
    const segment = pos + 4;
    if (marker === 0xe1 && ascii(bytes, segment, 6) === 'Exif\0\0' && segment + length - 2 <= bytes.length) {
      exifOrientation = readExifOrientation(bytes.subarray(segment + 6, segment + length - 2));
    }
    if (SOF_MARKERS.has(marker)) {
      if (segment + 6 > bytes.length) break;
      const height = view.getUint16(segment + 1);
      const width = view.getUint16(segment + 3);
      const components = bytes[segment + 5]!;
      const modes: Record<number, PillowMode> = { 1: 'L', 3: 'RGB', 4: 'CMYK' };
      const mode = modes[components];
      if (mode === undefined)
        throw new UserError(`${name} is a JPEG with ${components} colour components; convert it to RGB.`);
      return { format: 'jpeg', width, height, mode, bitDepth: 8, exifOrientation };
    }
    if (marker === 0xda || marker === 0xd9) break;
    pos = segment + length - 2;
  }
  throw truncated(name);
}

/** The Orientation tag (0x0112) of IFD0 in a TIFF-structured EXIF block; 1 when absent or unreadable. */
export function readExifOrientation(tiff: Uint8Array): number {
  if (tiff.length < 8) return 1;
  const view = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  const little = tiff[0] === 0x49;
  const ifd = view.getUint32(4, little);
  if (ifd + 2 > tiff.length) return 1;
  const count = view.getUint16(ifd, little);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    if (entry + 12 > tiff.length) return 1;
    if (view.getUint16(entry, little) === 0x0112) {
      const value = view.getUint16(entry + 8, little);
      return value >= 1 && value <= 8 ? value : 1;
    }
  }
  return 1;
}

function readGif(bytes: Uint8Array, name: string): ImageHeader {
  if (bytes.length < 10) throw truncated(name);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    format: 'gif',
    width: view.getUint16(6, true),
    height: view.getUint16(8, true),
    mode: 'P',
    bitDepth: 8,
    exifOrientation: 1,
  };
}

function readBmp(bytes: Uint8Array, name: string): ImageHeader {
  if (bytes.length < 26) throw truncated(name);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dibSize = view.getUint32(14, true);
  const core = dibSize === 12;
  if (!core && bytes.length < 30) throw truncated(name);
  const width = core ? view.getUint16(18, true) : view.getInt32(18, true);
  const height = Math.abs(core ? view.getInt16(20, true) : view.getInt32(22, true));
  const bitsPerPixel = view.getUint16(core ? 24 : 28, true);
  const mode = bitsPerPixel <= 8 ? bmpPaletteMode(bytes, view, dibSize, bitsPerPixel, name) : 'RGB';
  return { format: 'bmp', width, height, mode, bitDepth: 8, exifOrientation: 1 };
}

/**
 * Pillow's BmpImagePlugin: a palette of exactly the greys (i, i, i) for i = 0..colors-1 (or black and
 * white for 2 colours) is dropped and the image opens as "L" (or "1"); any other palette gives "P".
 */
function bmpPaletteMode(
  bytes: Uint8Array,
  view: DataView,
  dibSize: number,
  bitsPerPixel: number,
  name: string,
): PillowMode {
  const core = dibSize === 12;
  const colorsUsed = core || bytes.length < 50 ? 0 : view.getUint32(46, true);
  const colors = colorsUsed || 1 << bitsPerPixel;
  // Pillow refuses palettes over 65536 entries; the header field is 32 bits, so check before looping over it.
  if (colors > 65536)
    throw new UserError(
      `${name} declares a BMP palette of ${colors} colours (Pillow reads at most 65536); re-export it.`,
    );
  const entrySize = core ? 3 : 4;
  const paletteStart = 14 + dibSize;
  let greyscale = true;
  for (let i = 0; i < colors && greyscale; i++) {
    const grey = colors === 2 ? i * 255 : i;
    const at = paletteStart + i * entrySize;
    greyscale = at + 3 <= bytes.length && bytes[at] === grey && bytes[at + 1] === grey && bytes[at + 2] === grey;
  }
  if (!greyscale) return 'P';
  return colors === 2 ? '1' : 'L';
}

function readTiff(bytes: Uint8Array, name: string): ImageHeader {
  if (bytes.length < 8) throw truncated(name);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const little = bytes[0] === 0x49;
  const ifd = view.getUint32(4, little);
  if (ifd + 2 > bytes.length) throw truncated(name);
  const tags = new Map<number, number>();
  const count = view.getUint16(ifd, little);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    if (entry + 12 > bytes.length) throw truncated(name);
    const type = view.getUint16(entry + 2, little);
    tags.set(
      view.getUint16(entry, little),
      type === 3 ? view.getUint16(entry + 8, little) : view.getUint32(entry + 8, little),
    );
  }
  const width = tags.get(256) ?? 0;
  const height = tags.get(257) ?? 0;
  const samples = tags.get(277) ?? 1;
  const photometric = tags.get(262) ?? 2;
  const bySamples: Record<number, PillowMode> = { 1: 'L', 2: 'LA', 3: 'RGB', 4: 'RGBA' };
  const mode: PillowMode = photometric === 3 ? 'P' : (bySamples[samples] ?? 'RGB');
  return { format: 'tiff', width, height, mode, bitDepth: 8, exifOrientation: 1 };
}

/**
 * A WebP's size and whether it has alpha, as libwebp's WebPGetFeatures reads them (Pillow opens a WebP as
 * "RGBA" when it has alpha, else "RGB"): from the VP8 frame header (lossy), the VP8L header (lossless), or the
 * VP8X canvas of the extended format. Animated WebPs are refused.
 */
function readWebp(bytes: Uint8Array, name: string): ImageHeader {
  if (bytes.length < 30) throw truncated(name);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const chunk = ascii(bytes, 12, 4);
  let width: number, height: number, alpha: boolean;
  if (chunk === 'VP8 ') {
    // A 3-byte frame tag, the start code 9d 01 2a, then 14-bit width and height (2 bits of scaling above each).
    if (bytes[23] !== 0x9d || bytes[24] !== 0x01 || bytes[25] !== 0x2a)
      throw new UserError(`${name} has a damaged WebP (VP8) header; re-export it.`);
    width = view.getUint16(26, true) & 0x3fff;
    height = view.getUint16(28, true) & 0x3fff;
    alpha = false;
  } else if (chunk === 'VP8L') {
    // The signature byte 0x2f, then width-1 and height-1 in 14 bits each and the alpha hint bit.
    if (bytes[20] !== 0x2f) throw new UserError(`${name} has a damaged WebP (VP8L) header; re-export it.`);
    const bits = view.getUint32(21, true);
    width = (bits & 0x3fff) + 1;
    height = ((bits >>> 14) & 0x3fff) + 1;
    alpha = ((bits >>> 28) & 1) === 1;
  } else if (chunk === 'VP8X') {
    const flags = bytes[20]!;
    if (flags & 0x02)
      throw new UserError(`${name} is an animated WebP; save the frame you want as a still PNG or JPEG.`);
    width = 1 + (bytes[24]! | (bytes[25]! << 8) | (bytes[26]! << 16));
    height = 1 + (bytes[27]! | (bytes[28]! << 8) | (bytes[29]! << 16));
    alpha = (flags & 0x10) !== 0;
  } else {
    throw new UserError(
      `${name} has a damaged WebP header (unknown first chunk ${JSON.stringify(chunk)}); re-export it.`,
    );
  }
  return { format: 'webp', width, height, mode: alpha ? 'RGBA' : 'RGB', bitDepth: 8, exifOrientation: 1 };
}
