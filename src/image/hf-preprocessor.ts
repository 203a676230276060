/**
 * transformers' preprocessor_config.json for CLIP (CLIPImageProcessor, formerly CLIPFeatureExtractor) as options
 * of the existing transform: resize (shortest_edge, or height and width), center crop, convert("RGB"), rescale,
 * normalize, with transformers' defaults for fields the file leaves out.
 */
import { UserError } from '../errors.js';
import { OPENAI_MEAN, OPENAI_STD, type PreprocessOptions, type TransformersSteps } from './index.js';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The slow, Pillow-based processors; the "Fast" one resizes torch tensors and gives other pixels. */
const PROCESSOR_TYPES = new Set(['CLIPImageProcessor', 'CLIPFeatureExtractor']);
/** PIL.Image.Resampling.BICUBIC, CLIPImageProcessor's default. */
const BICUBIC = 3;

function refuse(what: string, problem: string): UserError {
  return new UserError(`${what} ${problem}; whylesion follows CLIPImageProcessor's bicubic resize and center crop.`);
}

function side(what: string, field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0)
    throw refuse(what, `has ${field}=${JSON.stringify(value)}, not a positive integer`);
  return value;
}

function flag(what: string, raw: Json, field: string, fallback: boolean): boolean {
  const value = raw[field] ?? fallback;
  if (typeof value !== 'boolean') throw refuse(what, `has ${field}=${JSON.stringify(value)}, not true or false`);
  return value;
}

function triple(what: string, field: string, value: unknown, fallback: readonly number[]): number[] {
  if (value === undefined || value === null) return [...fallback];
  if (!Array.isArray(value) || value.length !== 3 || !value.every((v) => typeof v === 'number' && Number.isFinite(v)))
    throw refuse(what, `has ${field}=${JSON.stringify(value)}, not three numbers`);
  return value as number[];
}

/** `size`: an int is the shortest edge (get_size_dict with default_to_square=False), else the dict's keys. */
function resizeOf(what: string, value: unknown): TransformersSteps['resize'] {
  if (typeof value === 'number') return { shortestEdge: side(what, 'size', value) };
  if (isObject(value) && value.shortest_edge !== undefined && value.longest_edge === undefined)
    return { shortestEdge: side(what, 'size.shortest_edge', value.shortest_edge) };
  if (isObject(value) && value.height !== undefined && value.width !== undefined)
    return { width: side(what, 'size.width', value.width), height: side(what, 'size.height', value.height) };
  throw refuse(what, `has size=${JSON.stringify(value)}, neither shortest_edge nor height and width`);
}

function cropOf(what: string, value: unknown): { width: number; height: number } {
  if (typeof value === 'number') return { width: side(what, 'crop_size', value), height: value };
  if (isObject(value)) {
    return {
      width: side(what, 'crop_size.width', value.width),
      height: side(what, 'crop_size.height', value.height),
    };
  }
  throw refuse(what, `has crop_size=${JSON.stringify(value)}, not a size`);
}

/**
 * The preprocessing a parsed preprocessor_config.json describes, for a model whose image tower takes
 * `imageSize` x `imageSize` pixels; refused in one sentence when it cannot give that size or uses another resample.
 */
export function transformersPreprocessing(raw: unknown, what: string, imageSize: number): PreprocessOptions {
  if (!isObject(raw)) throw refuse(what, 'is not a JSON object');
  const type = raw.image_processor_type ?? raw.feature_extractor_type;
  if (type !== undefined && !PROCESSOR_TYPES.has(type as string))
    throw refuse(what, `names the image processor ${JSON.stringify(type)}, not CLIPImageProcessor`);
  // Without a resize the output would be the image's own size (or need padding), not the model's fixed input.
  if (!flag(what, raw, 'do_resize', true)) throw refuse(what, 'has do_resize=false');
  const resize = resizeOf(what, raw.size ?? { shortest_edge: 224 });
  const resample = raw.resample ?? BICUBIC;
  if (resample !== BICUBIC) throw refuse(what, `has resample=${JSON.stringify(resample)}, not bicubic (3)`);
  const crop = flag(what, raw, 'do_center_crop', true) ? cropOf(what, raw.crop_size ?? 224) : null;
  const [resizedW, resizedH] =
    'width' in resize ? [resize.width, resize.height] : [resize.shortestEdge, resize.shortestEdge];
  if (crop && (crop.width > resizedW || crop.height > resizedH)) {
    const resized =
      'width' in resize ? `a ${resizedW}x${resizedH} resize` : `images resized to a ${resizedW}-pixel side`;
    throw refuse(what, `crops ${crop.width}x${crop.height} out of ${resized}`);
  }
  const output = crop ?? ('width' in resize ? resize : undefined);
  if (!output || output.width !== imageSize || output.height !== imageSize) {
    const got = output ? `${output.width}x${output.height}` : 'images of any size';
    throw refuse(what, `gives ${got}, but the model takes ${imageSize}x${imageSize}`);
  }
  const rescale = flag(what, raw, 'do_rescale', true);
  const factor = raw.rescale_factor ?? 1 / 255;
  if (typeof factor !== 'number' || !Number.isFinite(factor) || factor <= 0)
    throw refuse(what, `has rescale_factor=${JSON.stringify(factor)}, not a positive number`);
  const normalize = flag(what, raw, 'do_normalize', true);
  const mean = normalize ? triple(what, 'image_mean', raw.image_mean, OPENAI_MEAN) : [0, 0, 0];
  const std = normalize ? triple(what, 'image_std', raw.image_std, OPENAI_STD) : [1, 1, 1];
  if (std.some((s) => s === 0)) throw refuse(what, 'has a zero in image_std');
  return {
    size: imageSize,
    mean,
    std,
    transformers: {
      resize,
      crop,
      convertRgbFirst: flag(what, raw, 'do_convert_rgb', true),
      rescaleFactor: rescale ? factor : 1,
    },
  };
}
