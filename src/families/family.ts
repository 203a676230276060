/**
 * A model family: everything the layers above (api/, the CLI) need to run one kind of model, declared in one
 * module. The family's own folder holds nothing else: its config parser, state-dict schema and graph builders
 * live in model/, and the tokenizer and image preprocessing it names live in tokenizer/ and image/.
 */
import type { KernelPolicy } from '../kernels/policy.js';
import type { Gpu } from '../runtime/gpu.js';
import type { ExecutorMemory } from '../graph/executor.js';
import type { KernelTiming, StepDump } from '../model/clip.js';
import type { TensorSource } from '../model/tensor-source.js';
import type { ComputeDtype } from '../model/weights.js';

// The model layer's own types, re-exported so that api/ and the CLI need not reach into model/.
export type { KernelTiming, StepDump } from '../model/clip.js';
export type { ComputeDtype } from '../model/weights.js';

/** The shapes a loaded model's callers see, whatever its layout inside. */
export interface ModelInputs {
  /** Length of an embedding row. */
  embedDim: number;
  /** Preprocessed images are [3, imageSize, imageSize]. */
  imageSize: number;
  /** A prompt is this many token ids. */
  contextLength: number;
}

/** How images become pixels: open_clip's eval transform (shorter side resized bicubic, center crop, normalize). */
export interface Preprocessing {
  size: number;
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

/** How prompts become token ids; `clip-bpe` is open_clip's SimpleTokenizer (tokenizer/), the only one so far. */
export type TokenizerKind = 'clip-bpe';

export interface Tokenizer {
  tokenize(texts: string[], contextLength: number): Int32Array;
}

export interface LoadModelOptions {
  dtype?: ComputeDtype;
  /** Block activations (see ClipLoadOptions.activations). */
  activations?: 'f32' | 'f16';
  exactShortcuts?: boolean;
  maxBatch?: number;
  onTensor?: (name: string, index: number, count: number) => void;
  planBudgetBytes?: number;
}

/** A model on the GPU: forwards on preprocessed pixels and token ids, each recorded as the family's graphs. */
export interface EmbeddingModel {
  readonly gpu: Gpu;
  /** The kernel family and tuning its plans run (and its weights were laid out for). */
  readonly policy: KernelPolicy;
  readonly dtype: ComputeDtype;
  /** Each tower's block activations as loaded. */
  readonly activations: { readonly vision: 'f32' | 'f16'; readonly text: 'f32' | 'f16' };
  /** exp(logit_scale): the temperature applied to cosine similarities. */
  readonly logitScale: number;
  readonly memory: ExecutorMemory;
  maxBatch(tower: 'image' | 'text'): number;
  encodePixels(pixels: Float32Array, batch: number): Promise<Float32Array>;
  encodeTokens(ids: Int32Array, batch: number): Promise<Float32Array>;
  dumpPixels(pixels: Float32Array, batch: number): Promise<StepDump>;
  dumpTokens(ids: Int32Array, batch: number): Promise<StepDump>;
  profilePixels(pixels: Float32Array, batch: number): Promise<KernelTiming[]>;
  profileTokens(ids: Int32Array, batch: number): Promise<KernelTiming[]>;
  visionKernels(batch: number): Promise<string[]>;
  clearPlans(): Promise<void>;
  dispose(): void;
}

/** A family, over its config type. */
export interface ModelFamily<Config> {
  /** Names the family in `whylesion info` and errors. */
  readonly name: string;
  /** The config file beside the weights in a checkpoint folder. */
  readonly configFile: string;
  /** Config schema: the config file's JSON → Config, every setting it cannot run refused in one sentence. */
  parseConfig(raw: unknown, what?: string): Config;
  /** Named configs that need no file (e.g. for `whylesion synth`). */
  readonly builtinConfigs: Readonly<Record<string, object>>;
  /** State-dict schema: every tensor the weights hold, name → shape, in state-dict order. */
  stateDict(config: Config): Map<string, number[]>;
  /** The shapes callers see. */
  inputs(config: Config): ModelInputs;
  tokenizer: TokenizerKind;
  preprocessing(config: Config): Preprocessing;
  /**
   * The smallest config whose image forward runs the same kernels, with the same shaders, as `config`'s (for
   * open_clip: two vision blocks, one text block, a token table of one row): what a shader warm-up compiles
   * (api/shader-warmup.ts).
   */
  kernelTwin(config: Config): Config;
  /** Graph builders: uploads the weights and returns the model whose forwards record the family's graphs. */
  load(policy: KernelPolicy, config: Config, source: TensorSource, options?: LoadModelOptions): Promise<EmbeddingModel>;
}
