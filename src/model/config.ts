import { UserError } from '../errors.js';

/** The model an open_clip_config.json describes, with open_clip's defaults filled in. */
export interface ClipConfig {
  embedDim: number;
  /** true: x·sigmoid(1.702x) (OpenAI weights); false: exact erf GELU. */
  quickGelu: boolean;
  vision: {
    imageSize: number;
    patchSize: number;
    width: number;
    layers: number;
    headWidth: number;
    heads: number;
    mlpRatio: number;
  };
  text: { contextLength: number; vocabSize: number; width: number; heads: number; layers: number; mlpRatio: number };
  preprocess: { mean: [number, number, number]; std: [number, number, number]; imageSize: number };
}

export const OPENAI_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const OPENAI_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

const builtin = (embedDim: number, vision: object, text: object) => ({
  model_cfg: { embed_dim: embedDim, vision_cfg: vision, text_cfg: text },
  preprocess_cfg: { mean: OPENAI_MEAN, std: OPENAI_STD },
});

/** open_clip's own configs for the towers whylesion runs, shaped like a Hub open_clip_config.json. */
export const BUILTIN_CONFIGS: Readonly<Record<string, object>> = {
  // WhyLesionCLIP's architecture.
  'ViT-L-14': builtin(
    768,
    { image_size: 224, layers: 24, width: 1024, patch_size: 14 },
    { context_length: 77, vocab_size: 49408, width: 768, heads: 12, layers: 12 },
  ),
  'ViT-B-16': builtin(
    512,
    { image_size: 224, layers: 12, width: 768, patch_size: 16 },
    { context_length: 77, vocab_size: 49408, width: 512, heads: 8, layers: 12 },
  ),
  'ViT-B-32': builtin(
    512,
    { image_size: 224, layers: 12, width: 768, patch_size: 32 },
    { context_length: 77, vocab_size: 49408, width: 512, heads: 8, layers: 12 },
  ),
};

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Fields that change the graph away from the plain ViT/text transformer, with the value open_clip
 * uses by default: a config may carry them at that value, any other value is refused.
 */
const MODEL_DEFAULTS: Json = { custom_text: false, init_logit_bias: null, multimodal_cfg: null };
const MODEL_IGNORED = new Set(['embed_dim', 'vision_cfg', 'text_cfg', 'quick_gelu', 'cast_dtype', 'init_logit_scale']);
const VISION_DEFAULTS: Json = {
  ls_init_value: null,
  attentional_pool: false,
  no_ln_pre: false,
  pos_embed_type: 'learnable',
  final_ln_after_pool: false,
  pool_type: 'tok',
  output_tokens: false,
  act_kwargs: null,
  norm_kwargs: null,
  timm_model_name: null,
  input_patchnorm: false,
  global_average_pool: false,
};
/** Read, or irrelevant at inference (dropout), or only meaningful for towers refused above (timm_*). */
const VISION_IGNORED = new Set([
  'image_size',
  'patch_size',
  'width',
  'layers',
  'head_width',
  'mlp_ratio',
  'patch_dropout',
  'attn_pooler_queries',
  'attn_pooler_heads',
  'n_queries',
  'timm_model_pretrained',
  'timm_pool',
  'timm_proj',
  'timm_proj_bias',
  'timm_drop',
  'timm_drop_path',
]);
const TEXT_DEFAULTS: Json = {
  ls_init_value: null,
  embed_cls: false,
  no_causal_mask: false,
  final_ln_after_pool: false,
  pool_type: 'argmax',
  proj_bias: false,
  output_tokens: false,
  act_kwargs: null,
  norm_kwargs: null,
  hf_model_name: null,
};
const TEXT_IGNORED = new Set([
  'context_length',
  'vocab_size',
  'width',
  'heads',
  'layers',
  'mlp_ratio',
  // Tokenizer settings: the token ids (pad id included) are the tokenizer's business; argmax pooling ignores padding.
  'hf_tokenizer_name',
  'tokenizer_kwargs',
  'pad_id',
  'hf_model_pretrained',
  'hf_proj_type',
  'hf_pooler_type',
  'proj',
]);
const PREPROCESS_DEFAULTS: Json = { interpolation: 'bicubic', resize_mode: 'shortest' };
const PREPROCESS_IGNORED = new Set(['mean', 'std', 'size', 'fill_color']);

function refusals(section: string, cfg: Json, defaults: Json, ignored: Set<string>): string[] {
  const refused: string[] = [];
  for (const [key, value] of Object.entries(cfg)) {
    if (ignored.has(key)) continue;
    if (!(key in defaults)) {
      refused.push(`${section}.${key} (unknown field)`);
    } else if (value !== null && value !== undefined && JSON.stringify(value) !== JSON.stringify(defaults[key])) {
      // Absent, null, false and {} all mean "not set" where open_clip's default is null.
      const emptyLikeNull =
        defaults[key] === null && (value === false || (isObject(value) && Object.keys(value).length === 0));
      if (!emptyLikeNull) refused.push(`${section}.${key}=${JSON.stringify(value)}`);
    }
  }
  return refused;
}

function configError(what: string, problem: string): UserError {
  return new UserError(
    `${what} ${problem}; whylesion runs open_clip ViT image towers with the standard text transformer.`,
  );
}

function positiveInteger(what: string, field: string, value: unknown, fallback: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0)
    throw configError(what, `has ${field}=${JSON.stringify(value)}, which is not a positive integer`);
  return v;
}

function positiveNumber(what: string, field: string, value: unknown, fallback: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v))
    throw configError(what, `has ${field}=${JSON.stringify(value)}, which is not a positive number`);
  return v;
}

/** open_clip allows image_size as [h, w]; the engine handles square images only. */
function squareSize(what: string, field: string, value: unknown, fallback: number): number {
  if (Array.isArray(value)) {
    if (value.length !== 2 || value[0] !== value[1])
      throw configError(what, `has non-square ${field}=${JSON.stringify(value)}, which is unsupported`);
    return positiveInteger(what, field, value[0], fallback);
  }
  return positiveInteger(what, field, value, fallback);
}

function triple(
  what: string,
  field: string,
  value: unknown,
  fallback: [number, number, number],
): [number, number, number] {
  if (value === undefined || value === null) return [...fallback];
  if (!Array.isArray(value) || value.length !== 3 || !value.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    throw configError(what, `has ${field}=${JSON.stringify(value)}, which is not three numbers`);
  }
  return value as [number, number, number];
}

/**
 * Upper bounds on sizes, each generous beside every real open_clip CLIP, so that a damaged or hostile config
 * (`vision_cfg.layers: 1000000` built a 4.6 GB schema) is refused in one sentence before anything is built.
 * `real` says what the largest real models use.
 */
const SIZE_BOUNDS: Record<string, { max: number; real: string }> = {
  embed_dim: { max: 8192, real: 'ViT-L-14 768, ViT-bigG-14 1280' },
  'vision_cfg.layers': { max: 128, real: 'ViT-L-14 24, ViT-bigG-14 48, ViT-e-14 56' },
  'vision_cfg.width': { max: 8192, real: 'ViT-L-14 1024, ViT-bigG-14 1664, ViT-e-14 1792' },
  'vision_cfg.image_size': { max: 1024, real: '224 to 518' },
  'vision_cfg.patch_size': { max: 64, real: '8 to 32' },
  'preprocess_cfg.size': { max: 1024, real: '224 to 518' },
  'vision_cfg.mlp_ratio': { max: 16, real: '4 to 8.57' },
  'text_cfg.layers': { max: 128, real: 'ViT-L-14 12, ViT-bigG-14 32, ViT-e-14 36' },
  'text_cfg.width': { max: 8192, real: 'ViT-L-14 768, ViT-bigG-14 1280' },
  'text_cfg.context_length': { max: 1024, real: '64 to 77, a few hundred at most' },
  'text_cfg.vocab_size': { max: 1_000_000, real: '49408, up to 256206 for multilingual tokenizers' },
  'text_cfg.mlp_ratio': { max: 16, real: '4' },
  patches: { max: 4096, real: 'ViT-L-14 at 224: 256, at 336: 576' },
};

function bounded(what: string, field: string, value: number): number {
  const bound = SIZE_BOUNDS[field]!;
  if (value > bound.max) {
    const name = field === 'patches' ? `${value} image patches ((image_size / patch_size)²)` : `${field}=${value}`;
    throw new UserError(
      `${what} has ${name}, more than any real CLIP (${bound.real}; whylesion accepts up to ${bound.max}); fix or re-download the config.`,
    );
  }
  return value;
}

/**
 * Parses an open_clip_config.json object (`{model_cfg, preprocess_cfg}`, or a bare model_cfg) into a ClipConfig.
 * `what` names the source in error messages. Refuses, listing every such field, configurations whose graph differs
 * from what the engine computes.
 */
export function parseClipConfig(raw: unknown, what = 'the model config'): ClipConfig {
  if (!isObject(raw)) throw configError(what, 'is not a JSON object');
  const model = isObject(raw.model_cfg) ? raw.model_cfg : raw;
  const preprocess = isObject(raw.preprocess_cfg) ? raw.preprocess_cfg : {};
  const vision = model.vision_cfg ?? {};
  const text = model.text_cfg ?? {};
  if (!isObject(vision)) throw configError(what, 'has a vision_cfg that is not an object');
  if (!isObject(text)) throw configError(what, 'has a text_cfg that is not an object');
  if (model.embed_dim === undefined) throw configError(what, 'has no embed_dim (is it an open_clip_config.json?)');

  const refused = [
    ...refusals('model_cfg', model, MODEL_DEFAULTS, MODEL_IGNORED),
    ...refusals('vision_cfg', vision, VISION_DEFAULTS, VISION_IGNORED),
    ...refusals('text_cfg', text, TEXT_DEFAULTS, TEXT_IGNORED),
    ...refusals('preprocess_cfg', preprocess, PREPROCESS_DEFAULTS, PREPROCESS_IGNORED),
  ];
  if (Array.isArray(vision.layers))
    refused.unshift(`vision_cfg.layers=${JSON.stringify(vision.layers)} (a ModifiedResNet)`);
  if (refused.length > 0) throw configError(what, `uses unsupported settings: ${refused.join(', ')}`);

  const visionWidth = positiveInteger(what, 'vision_cfg.width', vision.width, 768);
  const headWidth = positiveInteger(what, 'vision_cfg.head_width', vision.head_width, 64);
  if (visionWidth % headWidth !== 0)
    throw configError(what, `has vision width ${visionWidth}, not a multiple of head_width ${headWidth}`);
  const imageSize = squareSize(what, 'vision_cfg.image_size', vision.image_size, 224);
  const patchSize = positiveInteger(what, 'vision_cfg.patch_size', vision.patch_size, 16);
  if (imageSize % patchSize !== 0)
    throw configError(what, `has image_size ${imageSize}, not a multiple of patch_size ${patchSize}`);
  const textWidth = positiveInteger(what, 'text_cfg.width', text.width, 512);
  const textHeads = positiveInteger(what, 'text_cfg.heads', text.heads, 8);
  if (textWidth % textHeads !== 0)
    throw configError(what, `has text width ${textWidth}, not a multiple of its ${textHeads} heads`);
  if (model.quick_gelu !== undefined && typeof model.quick_gelu !== 'boolean')
    throw configError(what, 'has a quick_gelu that is not true/false');
  for (const [field, value] of [
    ['vision_cfg.width', visionWidth],
    ['vision_cfg.image_size', imageSize],
    ['vision_cfg.patch_size', patchSize],
    ['patches', (imageSize / patchSize) ** 2],
    ['text_cfg.width', textWidth],
  ] as const)
    bounded(what, field, value);
  const sized = (field: string, value: number): number => bounded(what, field, value);

  return {
    embedDim: sized('embed_dim', positiveInteger(what, 'embed_dim', model.embed_dim, 0)),
    quickGelu: model.quick_gelu === true,
    vision: {
      imageSize,
      patchSize,
      width: visionWidth,
      layers: sized('vision_cfg.layers', positiveInteger(what, 'vision_cfg.layers', vision.layers, 12)),
      headWidth,
      heads: visionWidth / headWidth,
      mlpRatio: sized('vision_cfg.mlp_ratio', positiveNumber(what, 'vision_cfg.mlp_ratio', vision.mlp_ratio, 4)),
    },
    text: {
      contextLength: sized(
        'text_cfg.context_length',
        positiveInteger(what, 'text_cfg.context_length', text.context_length, 77),
      ),
      vocabSize: sized('text_cfg.vocab_size', positiveInteger(what, 'text_cfg.vocab_size', text.vocab_size, 49408)),
      width: textWidth,
      heads: textHeads,
      layers: sized('text_cfg.layers', positiveInteger(what, 'text_cfg.layers', text.layers, 12)),
      mlpRatio: sized('text_cfg.mlp_ratio', positiveNumber(what, 'text_cfg.mlp_ratio', text.mlp_ratio, 4)),
    },
    preprocess: {
      mean: triple(what, 'preprocess_cfg.mean', preprocess.mean, OPENAI_MEAN),
      std: triple(what, 'preprocess_cfg.std', preprocess.std, OPENAI_STD),
      imageSize: sized('preprocess_cfg.size', squareSize(what, 'preprocess_cfg.size', preprocess.size, imageSize)),
    },
  };
}
