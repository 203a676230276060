/**
 * Hugging Face transformers' CLIPModel layout (config.json + model.safetensors or pytorch_model.bin), read as the
 * open_clip checkpoint it was converted from: config.json becomes an open_clip_config.json-shaped object that
 * model/config.ts interprets, and the tensors are renamed (and q/k/v joined, projections transposed) back to
 * open_clip's names, undoing transformers' convert_clip_original_pytorch_to_hf.py.
 */
import { UserError } from '../errors.js';
import { elementCount, type TensorInfo, type TensorSource } from './tensor-source.js';

export const HF_CONFIG_FILE = 'config.json';
export const HF_SAFETENSORS_FILE = 'model.safetensors';
export const HF_BIN_FILE = 'pytorch_model.bin';
export const HF_PREPROCESSOR_FILE = 'preprocessor_config.json';
/** The CLIP BPE vocabulary as transformers' CLIPTokenizer reads it. */
export const HF_TOKENIZER_FILES = ['vocab.json', 'merges.txt'] as const;

/** transformers' integer position_ids buffers, saved by older versions; the graph never reads them. */
export const isPositionIds = (name: string): boolean => name.endsWith('embeddings.position_ids');

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Whether a parsed config.json is a transformers CLIP (CLIPModel's `model_type`). */
export function isHfClipConfig(raw: unknown): boolean {
  return isObject(raw) && raw.model_type === 'clip';
}

/** The refusal for a config.json of another transformers model. */
export function notClipError(what: string, raw: unknown): UserError {
  const type = isObject(raw) && typeof raw.model_type === 'string' ? raw.model_type : undefined;
  return new UserError(
    `${what} describes ${type ? `a transformers "${type}" model` : 'no transformers model_type'}, not CLIP; ` +
      'whylesion reads open_clip checkpoints (open_clip_config.json) and transformers CLIPModel ones (model_type "clip").',
  );
}

/** CLIPTextConfig's and CLIPVisionConfig's defaults (transformers), for fields a config.json leaves out. */
const TEXT_DEFAULTS: Json = {
  vocab_size: 49408,
  hidden_size: 512,
  intermediate_size: 2048,
  num_hidden_layers: 12,
  num_attention_heads: 8,
  max_position_embeddings: 77,
  hidden_act: 'quick_gelu',
  layer_norm_eps: 1e-5,
  eos_token_id: 49407,
};
const VISION_DEFAULTS: Json = {
  hidden_size: 768,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  num_channels: 3,
  image_size: 224,
  patch_size: 32,
  hidden_act: 'quick_gelu',
  layer_norm_eps: 1e-5,
};
/** transformers' legacy CLIP configs (the original OpenAI conversions) say eos_token_id 2 and pool at argmax. */
const LEGACY_EOS_TOKEN_ID = 2;

/** text_config updated by text_config_dict, as CLIPConfig does, over the defaults. */
function towerConfig(raw: Json, tower: 'text' | 'vision', what: string): Json {
  const base = raw[`${tower}_config`] ?? {};
  const override = raw[`${tower}_config_dict`] ?? {};
  if (!isObject(base) || !isObject(override))
    throw new UserError(`${what} has a ${tower}_config that is not an object; re-download it.`);
  const defaults = tower === 'text' ? TEXT_DEFAULTS : VISION_DEFAULTS;
  const merged: Json = { ...defaults };
  for (const [key, value] of Object.entries({ ...base, ...override })) if (value !== null) merged[key] = value;
  return merged;
}

function integer(what: string, field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0)
    throw new UserError(`${what} has ${field}=${JSON.stringify(value)}, not a positive integer; re-download it.`);
  return value;
}

/**
 * config.json of a transformers CLIPModel as an open_clip_config.json object (`{model_cfg, preprocess_cfg}`),
 * so that model/config.ts checks and interprets it like any open_clip config. `preprocess` is the parsed
 * preprocessor_config.json, if any: its mean and std go into preprocess_cfg.
 */
export function openClipConfigFromHf(raw: unknown, what: string, preprocess?: unknown): Json {
  if (!isHfClipConfig(raw)) throw notClipError(what, raw);
  const config = raw as Json;
  const text = towerConfig(config, 'text', what);
  const vision = towerConfig(config, 'vision', what);
  const actText = text.hidden_act;
  const actVision = vision.hidden_act;
  const acts = new Set(['quick_gelu', 'gelu']);
  if (actText !== actVision || typeof actText !== 'string' || !acts.has(actText)) {
    throw new UserError(
      `${what} has hidden_act ${JSON.stringify(actText)} (text) and ${JSON.stringify(actVision)} (vision); ` +
        'whylesion runs CLIP with "quick_gelu" or "gelu" in both towers.',
    );
  }
  if (vision.num_channels !== 3)
    throw new UserError(
      `${what} has vision_config.num_channels=${JSON.stringify(vision.num_channels)}; CLIP takes RGB (3).`,
    );
  const vocabSize = integer(what, 'text_config.vocab_size', text.vocab_size);
  // transformers pools text at argmax(ids) for legacy configs, else at the first eos_token_id: the same row
  // when eos_token_id is the largest id, which is what the graph (argmax, as open_clip) computes.
  const eos = text.eos_token_id;
  if (eos !== LEGACY_EOS_TOKEN_ID && eos !== vocabSize - 1) {
    throw new UserError(
      `${what} has text_config.eos_token_id=${JSON.stringify(eos)}: transformers pools at its first occurrence, ` +
        `which whylesion's argmax pooling equals only for the largest id (${vocabSize - 1}) or the legacy 2.`,
    );
  }
  const tower = (cfg: Json, prefix: string) => {
    const width = integer(what, `${prefix}.hidden_size`, cfg.hidden_size);
    const heads = integer(what, `${prefix}.num_attention_heads`, cfg.num_attention_heads);
    if (width % heads !== 0)
      throw new UserError(`${what} has ${prefix}.hidden_size ${width}, not a multiple of its ${heads} heads.`);
    const eps = cfg.layer_norm_eps;
    return {
      width,
      heads,
      layers: integer(what, `${prefix}.num_hidden_layers`, cfg.num_hidden_layers),
      mlp_ratio: integer(what, `${prefix}.intermediate_size`, cfg.intermediate_size) / width,
      // open_clip's default; another eps goes through as open_clip writes it.
      ...(eps === 1e-5 ? {} : { norm_kwargs: { eps } }),
    };
  };
  const t = tower(text, 'text_config');
  const v = tower(vision, 'vision_config');
  const model_cfg: Json = {
    embed_dim: integer(what, 'projection_dim', config.projection_dim ?? 512),
    quick_gelu: actText === 'quick_gelu',
    vision_cfg: {
      image_size: vision.image_size,
      patch_size: vision.patch_size,
      width: v.width,
      head_width: v.width / v.heads,
      layers: v.layers,
      mlp_ratio: v.mlp_ratio,
      ...(v.norm_kwargs ? { norm_kwargs: v.norm_kwargs } : {}),
    },
    text_cfg: {
      context_length: text.max_position_embeddings,
      vocab_size: vocabSize,
      width: t.width,
      heads: t.heads,
      layers: t.layers,
      mlp_ratio: t.mlp_ratio,
      ...(t.norm_kwargs ? { norm_kwargs: t.norm_kwargs } : {}),
    },
  };
  const preprocess_cfg: Json = {};
  if (isObject(preprocess)) {
    if (preprocess.image_mean !== undefined) preprocess_cfg.mean = preprocess.image_mean;
    if (preprocess.image_std !== undefined) preprocess_cfg.std = preprocess.image_std;
  }
  return { model_cfg, preprocess_cfg };
}

/** How one open_clip tensor is read from the transformers checkpoint. */
type Recipe =
  | { kind: 'same'; from: string }
  | { kind: 'concat'; from: [string, string, string] }
  | { kind: 'transpose'; from: string };

/** open_clip's name → transformers' tensors, for `visionLayers` and `textLayers` blocks. */
function recipes(visionLayers: number, textLayers: number): Map<string, Recipe> {
  const map = new Map<string, Recipe>();
  const same = (to: string, from: string) => map.set(to, { kind: 'same', from });
  const norm = (to: string, from: string) => {
    same(`${to}.weight`, `${from}.weight`);
    same(`${to}.bias`, `${from}.bias`);
  };
  const blocks = (to: string, from: string, layers: number) => {
    for (let i = 0; i < layers; i++) {
      const o = `${to}.resblocks.${i}.`;
      const h = `${from}.layers.${i}.`;
      norm(`${o}ln_1`, `${h}layer_norm1`);
      norm(`${o}ln_2`, `${h}layer_norm2`);
      for (const part of ['weight', 'bias']) {
        map.set(`${o}attn.in_proj_${part}`, {
          kind: 'concat',
          from: [`${h}self_attn.q_proj.${part}`, `${h}self_attn.k_proj.${part}`, `${h}self_attn.v_proj.${part}`],
        });
      }
      norm(`${o}attn.out_proj`, `${h}self_attn.out_proj`);
      norm(`${o}mlp.c_fc`, `${h}mlp.fc1`);
      norm(`${o}mlp.c_proj`, `${h}mlp.fc2`);
    }
  };
  same('visual.conv1.weight', 'vision_model.embeddings.patch_embedding.weight');
  same('visual.class_embedding', 'vision_model.embeddings.class_embedding');
  same('visual.positional_embedding', 'vision_model.embeddings.position_embedding.weight');
  norm('visual.ln_pre', 'vision_model.pre_layrnorm');
  blocks('visual.transformer', 'vision_model.encoder', visionLayers);
  norm('visual.ln_post', 'vision_model.post_layernorm');
  map.set('visual.proj', { kind: 'transpose', from: 'visual_projection.weight' });
  same('token_embedding.weight', 'text_model.embeddings.token_embedding.weight');
  same('positional_embedding', 'text_model.embeddings.position_embedding.weight');
  blocks('transformer', 'text_model.encoder', textLayers);
  norm('ln_final', 'text_model.final_layer_norm');
  map.set('text_projection', { kind: 'transpose', from: 'text_projection.weight' });
  same('logit_scale', 'logit_scale');
  return map;
}

/** A transformers CLIPModel state dict seen under open_clip's names; reads tensor by tensor like its source. */
export class HfClipTensorSource implements TensorSource {
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  readonly what: string;
  private readonly recipes: Map<string, Recipe>;

  constructor(
    private readonly source: TensorSource,
    layers: { vision: number; text: number },
  ) {
    this.what = source.what ?? 'the transformers checkpoint';
    this.recipes = recipes(layers.vision, layers.text);
    const tensors = new Map<string, TensorInfo>();
    const info = (from: string): TensorInfo => {
      const found = source.tensors.get(from);
      if (!found)
        throw new UserError(
          `${this.what} has no tensor '${from}'; check that it is a transformers CLIPModel checkpoint for this config.json.`,
        );
      return found;
    };
    for (const [name, recipe] of this.recipes) {
      if (recipe.kind === 'same') tensors.set(name, { ...info(recipe.from), name });
      else if (recipe.kind === 'transpose') {
        const { dtype, shape } = info(recipe.from);
        if (shape.length !== 2)
          throw new UserError(
            `${this.what} has '${recipe.from}' of shape [${shape}], not a Linear weight; re-download it.`,
          );
        tensors.set(name, { name, dtype, shape: [shape[1]!, shape[0]!] });
      } else {
        const parts = recipe.from.map(info);
        const [first] = parts;
        const rest = first!.shape.slice(1);
        if (parts.some((p) => p.shape.length !== first!.shape.length || p.shape.join() !== first!.shape.join()))
          throw new UserError(
            `${this.what} has q/k/v projections of different shapes at '${recipe.from[0]}'; re-download it.`,
          );
        tensors.set(name, { name, dtype: first!.dtype, shape: [3 * first!.shape[0]!, ...rest] });
      }
    }
    // Keep the source file's data order, so the upload still reads the file front to back.
    const order = new Map([...source.tensors.keys()].map((name, index) => [name, index]));
    const firstSource = (recipe: Recipe) => order.get(typeof recipe.from === 'string' ? recipe.from : recipe.from[0])!;
    this.tensors = new Map(
      [...tensors].sort(([a], [b]) => firstSource(this.recipes.get(a)!) - firstSource(this.recipes.get(b)!)),
    );
  }

  private recipe(name: string): Recipe {
    const recipe = this.recipes.get(name);
    if (!recipe)
      throw new UserError(`${this.what} has no tensor named '${name}'; check that it is a checkpoint for this model.`);
    return recipe;
  }

  readF32(name: string, out?: Float32Array): Promise<Float32Array> {
    return this.read(name, out, (from, into) => this.source.readF32(from, into), Float32Array);
  }

  readF16(name: string, out?: Uint16Array): Promise<Uint16Array> {
    return this.read(name, out, (from, into) => this.source.readF16(from, into), Uint16Array);
  }

  private async read<T extends Float32Array | Uint16Array>(
    name: string,
    out: T | undefined,
    readFrom: (from: string, into?: T) => Promise<T>,
    Type: new (n: number) => T,
  ): Promise<T> {
    const recipe = this.recipe(name);
    const shape = this.tensors.get(name)!.shape;
    const count = elementCount(shape);
    if (out && out.length !== count)
      throw new Error(`output buffer for ${name} has ${out.length} elements, tensor has ${count}`);
    const result = out ?? new Type(count);
    if (recipe.kind === 'same') return readFrom(recipe.from, result);
    if (recipe.kind === 'concat') {
      const part = count / 3;
      for (let i = 0; i < 3; i++) await readFrom(recipe.from[i]!, result.subarray(i * part, (i + 1) * part) as T);
      return result;
    }
    // open_clip's [in, out] matrix is the Linear weight [out, in] transposed.
    const [rows, cols] = shape as [number, number];
    const linear = await readFrom(recipe.from);
    for (let c = 0; c < cols; c++) for (let r = 0; r < rows; r++) result[r * cols + c] = linear[c * rows + r]!;
    return result;
  }

  close(): Promise<void> {
    return this.source.close();
  }
}
