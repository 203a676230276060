/**
 * open_clip's eval preprocessing (Resize(S, bicubic) -> CenterCrop(S) -> convert("RGB") -> ToTensor ->
 * Normalize) reproduced on Pillow's arithmetic, from encoded image bytes to a float32 [3, S, S] tensor.
 */
import { UserError } from '../errors.js';
import { decodeWithHeader, MODE_CHANNELS, type DecodedImage } from './decode.js';
import { checkPixels, maxImagePixels, readImageHeader, type ImageLimits } from './header.js';
import { applyExifOrientation, centerCrop, normalizeToChw, resizedSize, resizeToRgb } from './transform.js';

export { decodeImage, type DecodedImage } from './decode.js';
export {
  MAX_IMAGE_PIXELS,
  maxImagePixels,
  readImageHeader,
  SUPPORTED_FORMATS,
  type ImageHeader,
  type ImageLimits,
  type PillowMode,
} from './header.js';
export { resizeBicubicPillow, resizeBicubicPillowInt32, resizeNearestPillow } from './resample.js';
export {
  applyExifOrientation,
  centerCrop,
  centerCropOffsets,
  normalizeToChw,
  resizedSize,
  resizeToRgb,
} from './transform.js';

/** OpenAI CLIP's normalization, open_clip's default (OPENAI_DATASET_MEAN / OPENAI_DATASET_STD). */
export const OPENAI_MEAN: readonly number[] = [0.48145466, 0.4578275, 0.40821073];
export const OPENAI_STD: readonly number[] = [0.26862954, 0.26130258, 0.27577711];

export interface PreprocessOptions extends ImageLimits {
  /** Output side S (shorter side resized to S, then center-cropped to S x S). Default 224. */
  size?: number;
  /** Per-channel mean, RGB. Default OpenAI's. */
  mean?: readonly number[];
  /** Per-channel standard deviation, RGB. Default OpenAI's. */
  std?: readonly number[];
  /** Apply the JPEG's EXIF orientation first, like PIL.ImageOps.exif_transpose. Default false, as open_clip. */
  exifRotate?: boolean;
  /**
   * transformers' CLIPImageProcessor instead of open_clip's transform (see hf-preprocessor.ts): its resize (shorter
   * side, or an exact size), its center crop (offsets rounded down; none when absent), convert("RGB")
   * before the resize, and ToTensor as a multiplication by `rescaleFactor` in float64. The output stays S x S.
   */
  transformers?: TransformersSteps;
}

export interface TransformersSteps {
  resize: { shortestEdge: number } | { width: number; height: number };
  crop: { width: number; height: number } | null;
  convertRgbFirst: boolean;
  rescaleFactor: number;
}

/** The size an image is resized to before the crop. */
function resizeTarget(width: number, height: number, size: number, steps?: TransformersSteps) {
  if (!steps) return resizedSize(width, height, size);
  if ('shortestEdge' in steps.resize) return resizedSize(width, height, steps.resize.shortestEdge);
  return steps.resize;
}

function checkOptions(opts: PreprocessOptions): {
  size: number;
  mean: readonly number[];
  std: readonly number[];
  limit: number;
} {
  const size = opts.size ?? 224;
  const mean = opts.mean ?? OPENAI_MEAN;
  const std = opts.std ?? OPENAI_STD;
  if (!Number.isInteger(size) || size < 1)
    throw new UserError(`The preprocessing size ${size} is not a positive integer; pass e.g. 224.`);
  if (mean.length !== 3 || std.length !== 3 || std.some((s) => s === 0)) {
    throw new UserError('The normalization mean and std must each have 3 values (RGB), with no zero std.');
  }
  return { size, mean, std, limit: maxImagePixels(opts) };
}

/** Runs Resize, CenterCrop, convert("RGB"), ToTensor and Normalize on a decoded image. */
export function preprocessDecoded(image: DecodedImage, opts: PreprocessOptions = {}, name = 'the image'): Float32Array {
  const { size, mean, std, limit } = checkOptions(opts);
  checkPixels(name, image.width, image.height, limit);
  const steps = opts.transformers;
  const target = resizeTarget(image.width, image.height, size, steps);
  // The resize allocates its output before anything else: an extreme aspect ratio makes it the largest image.
  checkPixels(name, image.width, image.height, limit, target);
  if (!steps) {
    const rgb = resizeToRgb(image, target.width, target.height);
    const cropped = centerCrop(rgb, target.width, target.height, 3, size, size);
    return normalizeToChw(cropped, size, size, mean, std);
  }
  const crop = steps.crop ?? target;
  if (crop.width !== size || crop.height !== size)
    throw new Error(
      `the transformers preprocessing gives ${crop.width}x${crop.height}, not the model's ${size}x${size}`,
    );
  // transformers converts to RGB first (convert("RGB") is resizeToRgb at the same size), then resizes RGB.
  const { width, height } = image;
  const rgb = steps.convertRgbFirst
    ? resizeToRgb({ width, height, mode: 'RGB', data: resizeToRgb(image, width, height) }, target.width, target.height)
    : resizeToRgb(image, target.width, target.height);
  const cropped = steps.crop ? centerCrop(rgb, target.width, target.height, 3, size, size, 'floor') : rgb;
  return normalizeToChw(cropped, size, size, mean, std, steps.rescaleFactor);
}

/**
 * Preprocesses encoded image bytes (PNG, JPEG, GIF, BMP, TIFF, WebP) exactly as open_clip's eval transform on
 * Pillow does, returning float32 [3, size, size] in CHW order. `name` names the input in error messages.
 */
export async function preprocessImage(
  input: Uint8Array,
  opts: PreprocessOptions = {},
  name = 'the image',
): Promise<Float32Array> {
  const { size, limit } = checkOptions(opts);
  // Both the decoded image and its resized copy are checked from the header, before anything is allocated.
  const header = readImageHeader(input, name, opts);
  const [width, height] =
    opts.exifRotate && header.exifOrientation >= 5 ? [header.height, header.width] : [header.width, header.height];
  checkPixels(name, width, height, limit, resizeTarget(width, height, size, opts.transformers));
  let image = await decodeWithHeader(input, header, name);
  if (opts.exifRotate) {
    const orientation = header.exifOrientation;
    const channels = image.mode === 'I' ? 1 : MODE_CHANNELS[image.mode];
    image = {
      ...image,
      ...applyExifOrientation(image.data, image.width, image.height, channels, orientation),
    } as DecodedImage;
  }
  return preprocessDecoded(image, opts, name);
}

/** The parts of a jimp image this module reads: its RGBA bitmap. */
export interface RgbaImageLike {
  bitmap: { width: number; height: number; data: Uint8Array };
}

/** Preprocesses an already decoded jimp image, treated as Pillow mode "RGBA" (resized premultiplied). */
export function preprocessJimp(image: RgbaImageLike, opts: PreprocessOptions = {}, name = 'the image'): Float32Array {
  const { width, height, data } = image.bitmap;
  return preprocessDecoded(
    { width, height, mode: 'RGBA', data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) },
    opts,
    name,
  );
}
