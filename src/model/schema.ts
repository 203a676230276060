import type { ClipConfig } from './config.js';

/**
 * open_clip's CLIP state_dict for a ViT image tower and the standard text transformer, declared once: each tensor's
 * name, shape, how the engine loads it and how synthetic checkpoints initialise it. The layout check (layout.ts),
 * the GPU upload (weights.ts) and synthetic checkpoints (io/synth.ts) all read this, so a model variant changes here.
 */

/** open_clip's MLP hidden width: int(width * mlp_ratio). */
export const mlpWidth = (width: number, mlpRatio: number): number => Math.trunc(width * mlpRatio);

/**
 * How the engine loads a tensor: `vector` and the layernorm `norm-gain`/`norm-bias` stay f32 as stored; `linear`
 * is a matmul weight [out, in] (stored in the compute dtype); `linear-transposed` is an [in, out] projection (x @ P)
 * turned into [out, in]; `embedding-table` is uploaded in row chunks; `scalar` is read to the host; `layer-scale`
 * (a LayerScale gamma) is read to the host and folded into the weights it scales (see LayerScaleSpec); `embedding-row`
 * (a [W] vector) becomes a one-row embedding table, looked up like a token.
 */
export type TensorRole =
  | 'vector'
  | 'norm-gain'
  | 'norm-bias'
  | 'linear'
  | 'linear-transposed'
  | 'embedding-table'
  | 'scalar'
  | 'layer-scale'
  | 'embedding-row';

/** Synthetic checkpoints draw the tensor from normal(mean, std); std 0 makes it the constant `mean`. */
export interface TensorInit {
  readonly mean: number;
  readonly std: number;
}

export class TensorSpec<R extends TensorRole = TensorRole> {
  constructor(
    readonly name: string,
    readonly shape: number[],
    readonly role: R,
    readonly init: TensorInit,
  ) {}
}

export type LayerNormSpec = [TensorSpec<'norm-gain'>, TensorSpec<'norm-bias'>];

/** One residual attention block; the field order is the upload order. */
export interface BlockSpec {
  ln1: LayerNormSpec;
  ln2: LayerNormSpec;
  inProj: TensorSpec<'linear'>;
  inProjBias: TensorSpec<'vector'>;
  outProj: TensorSpec<'linear'>;
  outProjBias: TensorSpec<'vector'>;
  fc: TensorSpec<'linear'>;
  fcBias: TensorSpec<'vector'>;
  proj: TensorSpec<'linear'>;
  projBias: TensorSpec<'vector'>;
}

/**
 * open_clip's LayerScale multiplies a branch's output (attn after out_proj, mlp after c_proj) by gamma per
 * channel before the residual add: diag(γ)·(W·x + b) = (diag(γ)·W)·x + γ∘b, so the engine folds gamma into that
 * weight's rows and bias at load, exact up to one rounding, and the graph is unchanged.
 */
export interface LayerScaleSpec {
  gamma: TensorSpec<'layer-scale'>;
  weight: TensorSpec<'linear'>;
  bias: TensorSpec<'vector'>;
}

export interface VisionSpec {
  conv: TensorSpec<'linear'>;
  classEmbedding: TensorSpec<'vector'>;
  pos: TensorSpec<'vector'>;
  /** Absent with no_ln_pre. */
  lnPre?: LayerNormSpec;
  blocks: BlockSpec[];
  lnPost: LayerNormSpec;
  proj: TensorSpec<'linear-transposed'>;
}

export interface TextSpec {
  pos: TensorSpec<'vector'>;
  blocks: BlockSpec[];
  lnFinal: LayerNormSpec;
  /** A bare [W, E] parameter, or with proj_bias an nn.Linear ([E, W] weight and a bias). */
  proj: TensorSpec<'linear-transposed' | 'linear'>;
  projBias?: TensorSpec<'vector'>;
  /** embed_cls's class token, appended after the context. */
  clsEmbedding?: TensorSpec<'embedding-row'>;
  tokenChunks: TensorSpec<'embedding-table'>;
}

/**
 * `tensors` is every state_dict key in state_dict order; `vision`, `text` and `logitScale` hold the same specs shaped
 * like the engine's weights (VisionWeights, TextWeights in weights.ts), fields in upload order.
 */
export interface ClipSchema {
  tensors: TensorSpec[];
  vision: VisionSpec;
  text: TextSpec;
  logitScale: TensorSpec<'scalar'>;
  /** Every LayerScale gamma and the weights it folds into (empty without ls_init_value). */
  layerScales: LayerScaleSpec[];
}

const NORM_GAIN: TensorInit = { mean: 1, std: 0.05 };
/** Synthetic gammas near 1 keep every block's contribution visible (trained ones are often far smaller). */
const LAYER_SCALE: TensorInit = { mean: 0.8, std: 0.1 };
const BIAS: TensorInit = { mean: 0, std: 0.02 };
const normal = (std: number): TensorInit => ({ mean: 0, std });

/**
 * The schema for `cfg`. Tensors are declared in state_dict order, which torch builds module by module: a module's own
 * parameters, then its submodules in registration order. The causal attn_mask buffer is registered with
 * persistent=False, so it is not saved. Initial scales follow open_clip's initialisation, so activations of a
 * synthetic model stay in range through all layers.
 */
export function clipSchema(cfg: ClipConfig): ClipSchema {
  const { vision: v, text: t, embedDim } = cfg;
  const tensors: TensorSpec[] = [];
  const declare = <R extends TensorRole>(name: string, shape: number[], role: R, init: TensorInit): TensorSpec<R> => {
    const spec = new TensorSpec(name, shape, role, init);
    tensors.push(spec);
    return spec;
  };
  const layerNorm = (prefix: string, width: number): LayerNormSpec => [
    declare(`${prefix}.weight`, [width], 'norm-gain', NORM_GAIN),
    declare(`${prefix}.bias`, [width], 'norm-bias', BIAS),
  ];
  const layerScales: LayerScaleSpec[] = [];
  const residualBlocks = (prefix: string, tower: ClipConfig['vision'] | ClipConfig['text']): BlockSpec[] => {
    const { width, layers } = tower;
    const hidden = mlpWidth(width, tower.mlpRatio);
    // Projections back into the residual stream shrink with depth so the stream's variance stays bounded.
    const residualStd = width ** -0.5 * (2 * layers) ** -0.5;
    const blocks: BlockSpec[] = [];
    for (let i = 0; i < layers; i++) {
      const p = `${prefix}.resblocks.${i}.`;
      const ln1 = layerNorm(`${p}ln_1`, width);
      const inProj = declare(`${p}attn.in_proj_weight`, [3 * width, width], 'linear', normal(width ** -0.5));
      const inProjBias = declare(`${p}attn.in_proj_bias`, [3 * width], 'vector', BIAS);
      const outProj = declare(`${p}attn.out_proj.weight`, [width, width], 'linear', normal(residualStd));
      const outProjBias = declare(`${p}attn.out_proj.bias`, [width], 'vector', BIAS);
      const layerScale = (name: string, weight: TensorSpec<'linear'>, bias: TensorSpec<'vector'>): void => {
        if (tower.layerScale)
          layerScales.push({ gamma: declare(`${p}${name}.gamma`, [width], 'layer-scale', LAYER_SCALE), weight, bias });
      };
      layerScale('ls_1', outProj, outProjBias);
      const ln2 = layerNorm(`${p}ln_2`, width);
      const fc = declare(`${p}mlp.c_fc.weight`, [hidden, width], 'linear', normal((2 * width) ** -0.5));
      const fcBias = declare(`${p}mlp.c_fc.bias`, [hidden], 'vector', BIAS);
      const proj = declare(`${p}mlp.c_proj.weight`, [width, hidden], 'linear', normal(residualStd));
      const projBias = declare(`${p}mlp.c_proj.bias`, [width], 'vector', BIAS);
      layerScale('ls_2', proj, projBias);
      blocks.push({ ln1, ln2, inProj, inProjBias, outProj, outProjBias, fc, fcBias, proj, projBias });
    }
    return blocks;
  };

  // CLIP copies its text tower's parts onto itself: positional_embedding and a bare text_projection are CLIP's own
  // parameters, saved first. CustomTextCLIP keeps the TextTransformer as `text`, saved after logit_scale and
  // visual, its own parameters (cls_emb, positional_embedding, text_projection) before its modules.
  const tp = t.customText ? 'text.' : '';
  const textParameters = () => ({
    cls: t.embedCls ? declare(`${tp}cls_emb`, [t.width], 'embedding-row', normal(0.01)) : undefined,
    pos: declare(
      `${tp}positional_embedding`,
      [t.contextLength + (t.embedCls ? 1 : 0), t.width],
      'vector',
      normal(0.01),
    ),
    bareProj: t.projBias
      ? undefined
      : declare(`${tp}text_projection`, [t.width, embedDim], 'linear-transposed', normal(t.width ** -0.5)),
  });
  const clipText = t.customText ? undefined : textParameters();
  const logitScale = declare('logit_scale', [], 'scalar', { mean: Math.log(100), std: 0 });
  // CLIP.visual: its own parameters, then conv1, ln_pre, transformer, ln_post.
  const grid = v.imageSize / v.patchSize;
  const classEmbedding = declare('visual.class_embedding', [v.width], 'vector', normal(v.width ** -0.5));
  const visionPos = declare(
    'visual.positional_embedding',
    [grid * grid + 1, v.width],
    'vector',
    normal(v.width ** -0.5),
  );
  const visionProj = declare('visual.proj', [v.width, embedDim], 'linear-transposed', normal(v.width ** -0.5));
  // [W, 3, P, P] is the matmul weight [W, 3·P·P]; unit-variance normalised pixels in, unit-variance patch embeddings out.
  const conv = declare(
    'visual.conv1.weight',
    [v.width, 3, v.patchSize, v.patchSize],
    'linear',
    normal((3 * v.patchSize ** 2) ** -0.5),
  );
  const lnPre = v.lnPre ? layerNorm('visual.ln_pre', v.width) : undefined;
  const visionBlocks = residualBlocks('visual.transformer', v);
  const lnPost = layerNorm('visual.ln_post', v.width);
  const { cls, pos: textPos, bareProj } = clipText ?? textParameters();
  // Text modules: CLIP's order is transformer, token_embedding, ln_final; TextTransformer's token_embedding first.
  const tokens = (): TensorSpec<'embedding-table'> =>
    declare(`${tp}token_embedding.weight`, [t.vocabSize, t.width], 'embedding-table', normal(0.02));
  const tokenFirst = t.customText ? tokens() : undefined;
  const textBlocks = residualBlocks(`${tp}transformer`, t);
  const tokenEmbedding = tokenFirst ?? tokens();
  const lnFinal = layerNorm(`${tp}ln_final`, t.width);
  const textProj =
    bareProj ?? declare(`${tp}text_projection.weight`, [embedDim, t.width], 'linear', normal(t.width ** -0.5));
  const textProjBias = bareProj ? undefined : declare(`${tp}text_projection.bias`, [embedDim], 'vector', BIAS);

  return {
    tensors,
    vision: { conv, classEmbedding, pos: visionPos, lnPre, blocks: visionBlocks, lnPost, proj: visionProj },
    text: {
      pos: textPos,
      blocks: textBlocks,
      lnFinal,
      proj: textProj,
      projBias: textProjBias,
      clsEmbedding: cls,
      tokenChunks: tokenEmbedding,
    },
    logitScale,
    layerScales,
  };
}
