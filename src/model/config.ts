import { UserError } from '../errors.js';

/** How a tower pools its final tokens into one row (open_clip's `pool_type`). */
export type VisionPool = 'tok' | 'avg';
export type TextPool = 'argmax' | 'last' | 'first';

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
    /** Blocks carry LayerScale gammas (`ls_1.gamma`, `ls_2.gamma`; open_clip's ls_init_value set). */
    layerScale: boolean;
    /** ln_pre after the positional embedding (false: open_clip's no_ln_pre). */
    lnPre: boolean;
    /** tok: the class token; avg: the mean of the patch tokens. */
    pool: VisionPool;
    /** ln_post on the pooled row instead of on every token before pooling (final_ln_after_pool). */
    lnAfterPool: boolean;
    normEps: number;
  };
  text: {
    contextLength: number;
    vocabSize: number;
    width: number;
    heads: number;
    layers: number;
    mlpRatio: number;
    layerScale: boolean;
    /** argmax: the row of the largest id (EOT); last, first: that row of the context. */
    pool: TextPool;
    /** Causal attention mask (false: no_causal_mask). */
    causal: boolean;
    /** text_projection is an nn.Linear with bias ([E, W] weight) instead of a bare [W, E] matrix. */
    projBias: boolean;
    normEps: number;
    /** custom_text: a CustomTextCLIP, the text tower saved under `text.` and run by TextTransformer.forward. */
    customText: boolean;
    /**
     * embed_cls (custom_text only): a learned class token appended after the context, pooled with ln_final; under
     * the causal mask it attends to key 0 and to key j where token j−1 is not `padId`.
     */
    embedCls: boolean;
    padId: number;
  };
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
 * Fields whose non-default value means a tower open_clip builds from other code than its native
 * VisionTransformer/TextTransformer (or a head the engine does not compute): each is refused, naming why.
 */
const MODEL_REFUSED: Record<string, string> = {
  init_logit_bias: "a SigLIP logit bias, which whylesion's zero-shot softmax does not apply",
  multimodal_cfg: "CoCa's multimodal text decoder",
};
const MODEL_READ = new Set([
  'embed_dim',
  'vision_cfg',
  'text_cfg',
  'quick_gelu',
  'cast_dtype',
  'init_logit_scale',
  'custom_text',
]);
const VISION_REFUSED: Record<string, string> = {
  timm_model_name: 'a timm image tower',
  attentional_pool: "CoCa's attentional pooler",
  output_tokens: 'token outputs besides the pooled embedding',
  act_kwargs: 'activation arguments',
  input_patchnorm: 'a patch LayerNorm (open_clip before 2.20)',
  global_average_pool: 'global_average_pool (open_clip before 2.20; use pool_type "avg")',
};
/** Read below, or irrelevant at inference (dropout, timm_* settings of a refused timm tower). */
const VISION_READ = new Set([
  'image_size',
  'patch_size',
  'width',
  'layers',
  'head_width',
  'mlp_ratio',
  'ls_init_value',
  'no_ln_pre',
  'pool_type',
  'final_ln_after_pool',
  'norm_kwargs',
  // sin_cos_2d is a fixed table, but open_clip saves it as visual.positional_embedding like a learned one.
  'pos_embed_type',
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
const TEXT_REFUSED: Record<string, string> = {
  hf_model_name: 'a Hugging Face transformers text tower',
  output_tokens: 'token outputs besides the pooled embedding',
  act_kwargs: 'activation arguments',
};
const TEXT_READ = new Set([
  'context_length',
  'vocab_size',
  'width',
  'heads',
  'layers',
  'mlp_ratio',
  'ls_init_value',
  'pool_type',
  'no_causal_mask',
  'proj_bias',
  'norm_kwargs',
  'embed_cls',
  // open_clip 2.24's CLIP never passes text final_ln_after_pool to its TextTransformer: ln_final runs before pooling.
  'final_ln_after_pool',
  // pad_id shapes only embed_cls's attention mask; the tokenizer pads with 0 whatever it says.
  'pad_id',
  'hf_tokenizer_name',
  'tokenizer_kwargs',
  'hf_model_pretrained',
  'hf_proj_type',
  'hf_pooler_type',
  'proj',
]);
const PREPROCESS_DEFAULTS: Json = { interpolation: 'bicubic', resize_mode: 'shortest' };
const PREPROCESS_READ = new Set(['mean', 'std', 'size', 'fill_color']);

/** Absent, null, false, "" and {} all mean "not set" (open_clip's default for every refused field). */
const isUnset = (value: unknown): boolean =>
  value === null ||
  value === undefined ||
  value === false ||
  value === '' ||
  (isObject(value) && Object.keys(value).length === 0);

function refusals(section: string, cfg: Json, refused: Record<string, string>, read: Set<string>): string[] {
  const found: string[] = [];
  for (const [key, value] of Object.entries(cfg)) {
    if (read.has(key)) continue;
    if (!(key in refused)) found.push(`${section}.${key} (unknown field)`);
    else if (!isUnset(value)) found.push(`${section}.${key}=${JSON.stringify(value)} (${refused[key]})`);
  }
  return found;
}

function preprocessRefusals(preprocess: Json): string[] {
  const found: string[] = [];
  for (const [key, value] of Object.entries(preprocess)) {
    if (PREPROCESS_READ.has(key)) continue;
    if (!(key in PREPROCESS_DEFAULTS)) found.push(`preprocess_cfg.${key} (unknown field)`);
    else if (value !== null && value !== undefined && value !== PREPROCESS_DEFAULTS[key])
      found.push(`preprocess_cfg.${key}=${JSON.stringify(value)}`);
  }
  return found;
}

/** A knob's value must be one of `allowed` (absent or null: the first); anything else is a refusal. */
function oneOf<T extends string | boolean>(
  refused: string[],
  field: string,
  value: unknown,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined || value === null) return fallback;
  if ((allowed as readonly unknown[]).includes(value)) return value as T;
  refused.push(
    `${field}=${JSON.stringify(value)} (whylesion reads ${allowed.map((a) => JSON.stringify(a)).join(' or ')})`,
  );
  return fallback;
}

/** norm_kwargs: only LayerNorm's eps changes the forward; other arguments are refused. */
function layerNormEps(refused: string[], field: string, value: unknown): number {
  if (value === undefined || value === null) return 1e-5;
  if (!isObject(value)) {
    refused.push(`${field}=${JSON.stringify(value)} (not an object)`);
    return 1e-5;
  }
  for (const key of Object.keys(value))
    if (key !== 'eps') refused.push(`${field}.${key} (whylesion reads only LayerNorm's eps)`);
  const eps = value.eps ?? 1e-5;
  if (typeof eps !== 'number' || !(eps > 0) || !Number.isFinite(eps)) {
    refused.push(`${field}.eps=${JSON.stringify(eps)} (not a positive number)`);
    return 1e-5;
  }
  return eps;
}

/** ls_init_value: any number builds LayerScale (its gammas are then loaded); null or absent none. */
function layerScale(refused: string[], field: string, value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value === 'number' && Number.isFinite(value)) return true;
  refused.push(`${field}=${JSON.stringify(value)} (not a number)`);
  return false;
}

function configError(what: string, problem: string): UserError {
  return new UserError(
    `${what} ${problem}; whylesion runs open_clip's native VisionTransformer and TextTransformer towers.`,
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
    ...refusals('model_cfg', model, MODEL_REFUSED, MODEL_READ),
    ...refusals('vision_cfg', vision, VISION_REFUSED, VISION_READ),
    ...refusals('text_cfg', text, TEXT_REFUSED, TEXT_READ),
    ...preprocessRefusals(preprocess),
  ];
  if (Array.isArray(vision.layers))
    refused.unshift(`vision_cfg.layers=${JSON.stringify(vision.layers)} (a ModifiedResNet)`);
  oneOf(refused, 'vision_cfg.pos_embed_type', vision.pos_embed_type, ['learnable', 'sin_cos_2d'], 'learnable');
  const knobs = {
    visionLayerScale: layerScale(refused, 'vision_cfg.ls_init_value', vision.ls_init_value),
    lnPre: !oneOf(refused, 'vision_cfg.no_ln_pre', vision.no_ln_pre, [false, true], false),
    visionPool: oneOf(refused, 'vision_cfg.pool_type', vision.pool_type, ['tok', 'avg'] as const, 'tok'),
    lnAfterPool: oneOf(refused, 'vision_cfg.final_ln_after_pool', vision.final_ln_after_pool, [false, true], false),
    visionEps: layerNormEps(refused, 'vision_cfg.norm_kwargs', vision.norm_kwargs),
    textLayerScale: layerScale(refused, 'text_cfg.ls_init_value', text.ls_init_value),
    textPool: oneOf(refused, 'text_cfg.pool_type', text.pool_type, ['argmax', 'last', 'first'] as const, 'argmax'),
    causal: !oneOf(refused, 'text_cfg.no_causal_mask', text.no_causal_mask, [false, true], false),
    projBias: oneOf(refused, 'text_cfg.proj_bias', text.proj_bias, [false, true], false),
    textEps: layerNormEps(refused, 'text_cfg.norm_kwargs', text.norm_kwargs),
    customText: oneOf(refused, 'model_cfg.custom_text', model.custom_text, [false, true], false),
    embedCls: oneOf(refused, 'text_cfg.embed_cls', text.embed_cls, [false, true], false),
    padId: text.pad_id ?? 0,
  };
  if (knobs.embedCls && !knobs.customText)
    // CLIP.encode_text adds context_length positions to the context_length+1 that embed_cls makes: open_clip fails.
    refused.push("text_cfg.embed_cls=true without model_cfg.custom_text (open_clip's CLIP cannot run it)");
  if (!Number.isSafeInteger(knobs.padId) || (knobs.padId as number) < 0)
    refused.push(`text_cfg.pad_id=${JSON.stringify(text.pad_id)} (not a token id)`);
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
      layerScale: knobs.visionLayerScale,
      lnPre: knobs.lnPre,
      pool: knobs.visionPool,
      lnAfterPool: knobs.lnAfterPool,
      normEps: knobs.visionEps,
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
      layerScale: knobs.textLayerScale,
      pool: knobs.textPool,
      causal: knobs.causal,
      projBias: knobs.projBias,
      normEps: knobs.textEps,
      customText: knobs.customText,
      embedCls: knobs.embedCls,
      padId: knobs.padId as number,
    },
    preprocess: {
      mean: triple(what, 'preprocess_cfg.mean', preprocess.mean, OPENAI_MEAN),
      std: triple(what, 'preprocess_cfg.std', preprocess.std, OPENAI_STD),
      imageSize: sized('preprocess_cfg.size', squareSize(what, 'preprocess_cfg.size', preprocess.size, imageSize)),
    },
  };
}
