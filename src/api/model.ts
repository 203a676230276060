import { UserError, withPermissionHints } from '../errors.js';
import { Gpu } from '../runtime/gpu.js';
import { KernelPolicy, type KernelFamily } from '../kernels/policy.js';
import { tuneMatmuls, type ShapeResult } from '../kernels/autotune.js';
import { tuningOf } from '../kernels/tuning.js';
import {
  maxImagePixels,
  preprocessImage,
  preprocessJimp,
  type PreprocessOptions,
  type RgbaImageLike,
} from '../image/index.js';
import {
  familyOf,
  type ComputeDtype,
  type EmbeddingModel,
  type ModelInputs,
  type Preprocessing,
  type StepDump,
  type Tokenizer,
} from '../families/index.js';
import { transformersPreprocessing } from '../image/hf-preprocessor.js';
import { platform } from '../platform/index.js';
import { trace } from '../platform/trace.js';
import type { ModelSource } from './loader-types.js';
import { loaders } from './loaders.js';
import { afterWarmup, warmImageShaders } from './shader-warmup.js';
import type { HubOptions } from '../io/hub.js';
import type { CheckpointIdentity, ModelIdentity } from '../io/identity.js';

export type { ModelSource } from './loader-types.js';

/** An image the browser has already decoded; preprocessed from its RGBA pixels, not from the file's bytes. */
export type DecodedImageObject = ImageBitmap | HTMLImageElement | HTMLCanvasElement | OffscreenCanvas | ImageData;

/**
 * An image to embed: a file path (Node, Deno) or URL (browser), encoded bytes (PNG, JPEG, ...) as a
 * Uint8Array, ArrayBuffer, Blob or File, a decoded jimp image, or (browser) a decoded image object.
 */
export type ImageInput = string | Uint8Array | ArrayBuffer | Blob | RgbaImageLike | DecodedImageObject;

export type LoadProgress =
  | { stage: 'download'; file: string; loaded: number; total: number | undefined }
  | { stage: 'weights'; tensor: string; loaded: number; total: number }
  /** GPU kernels compiled so far of those asked for; reported at load and at each later forward that needs new ones. */
  | { stage: 'compile'; compiled: number; requested: number };

export interface LoadOptions {
  /** Weight storage on the GPU: f32 (default) or f16 (half the memory; needs shader-f16). */
  dtype?: ComputeDtype;
  /**
   * Activations between the kernels of each transformer block: f16 by default with dtype f16 (faster; cosine
   * ≥ 0.99999 to f32 at ViT-L/14), else f32. 'f32' keeps f16 weights' numbers closer to f32's.
   */
  activations?: 'f32' | 'f16';
  /** Most images or prompts per GPU forward (default: what the GPU's limits allow, up to 64); larger batches are split. */
  maxBatch?: number;
  /**
   * Bytes the cached forward plans may hold besides the activation arena they share (bind groups, uniforms,
   * constants); least recently used plans are dropped first. Default 16 MiB.
   */
  planBudgetBytes?: number;
  /** Run on this GPUDevice instead of acquiring one. */
  device?: GPUDevice;
  onProgress?: (progress: LoadProgress) => void;
  /** The CLIP BPE vocabulary (bpe_simple_vocab_16e6.txt.gz, or vocab.json + merges.txt); default: a transformers checkpoint's own vocab.json + merges.txt, else $WHYLESION_BPE_VOCAB, else the one the package ships. Read when text is first encoded. */
  vocabPath?: string;
  /** Read the tokenizer while the weights load (for callers about to encode text), not on first use. */
  preloadTokenizer?: boolean;
  /**
   * On a CPU adapter (lavapipe) whose shader cache is still empty (a first run on this machine, a fresh
   * container), compile the image tower's shaders on a second device while the weights load, for callers
   * about to encode images; the first image forward waits for them. Nothing happens on later runs.
   */
  warmShaders?: boolean;
  /** Hub options: cache folder, revision, offline mode, endpoint, token (the browser uses endpoint and revision). */
  hub?: Omit<HubOptions, 'onProgress'>;
  /** Browser: keep fetched weights in the origin's private file system, so the next visit loads offline (default true). */
  storage?: boolean;
  /** Apply EXIF orientation before preprocessing (open_clip does not). */
  exifRotate?: boolean;
  /**
   * The most pixels an image may have, decoded or resized for the model (default Pillow's MAX_IMAGE_PIXELS,
   * 89,478,485): larger images are refused from their header, before anything is decoded or allocated.
   */
  maxImagePixels?: number;
  /**
   * Kernel choice: 'cached' (default) uses what `tune()` measured earlier on this adapter, saved in
   * $WHYLESION_TUNING_FILE or ~/.cache/whylesion/kernel-tuning.json, else built-in rules; 'rules' ignores
   * the cache. WHYLESION_KERNEL_TUNING=rules sets the default. (The browser keeps no tuning file: rules.)
   */
  kernelTuning?: 'cached' | 'rules';
  /**
   * Kernel family: 'auto' (default; $WHYLESION_KERNELS) decides from the adapter; 'cpu-subgroup', 'gpu' or
   * 'portable' force one, e.g. to check a hardware GPU's kernels on a CPU adapter. Same numbers, other speed.
   */
  kernels?: KernelFamily | 'auto';
}

export interface TuneOptions {
  /** Image batch sizes whose shapes to tune (default [1]). */
  batches?: number[];
  /** Prompts whose text shapes to tune (default: three short clinical phrases). */
  texts?: string[];
  /** Timed rounds per candidate kernel (default 5). */
  runs?: number;
  /** Save the choices to the tuning cache for later processes (default true). */
  save?: boolean;
  onShape?: (result: ShapeResult, index: number, total: number) => void;
}

/**
 * Prompt embeddings remembered per model (concept lists are hundreds of prompts, often repeated), keyed by
 * token ids rather than text so that an entry stays small however long its text.
 */
const TEXT_CACHE_LIMIT = 20_000;

/**
 * WhyLesionCLIP (or any open_clip ViT checkpoint) ready to embed images and text on WebGPU.
 */
export class WhyLesionModel {
  private readonly textCache = new Map<string, Float32Array>();
  private tokenizerLoad?: Promise<Tokenizer>;
  /** A transformers checkpoint's preprocessor_config.json steps, over `preprocessing`; open_clip's when absent. */
  private transformersSteps?: PreprocessOptions;

  private constructor(
    private readonly gpu: Gpu,
    private readonly ownsGpu: boolean,
    readonly model: EmbeddingModel,
    /** The shapes of this model's inputs and outputs. */
    readonly inputs: ModelInputs,
    /** How images become pixels for this model (size, mean, std of open_clip's eval transform). */
    readonly preprocessing: Preprocessing,
    private readonly vocabPath: string | undefined,
    private readonly exifRotate: boolean,
    private readonly maxImagePixels: number | undefined,
    /** What the numbers depend on (weights and config hashes, dtype): recorded in saved state, compared on reuse. */
    readonly identity: ModelIdentity,
  ) {}

  /** @internal use loadModel */
  static async create(
    model: EmbeddingModel,
    inputs: ModelInputs,
    preprocessing: Preprocessing,
    gpu: Gpu,
    ownsGpu: boolean,
    vocabPath: string | undefined,
    exifRotate: boolean,
    maxImagePixels: number | undefined,
    checkpoint: CheckpointIdentity,
    tokenizerLoad?: Promise<Tokenizer>,
    transformersSteps?: PreprocessOptions,
  ): Promise<WhyLesionModel> {
    const identity: ModelIdentity = {
      weights: checkpoint.weights,
      config: checkpoint.config,
      dtype: model.dtype,
      ...(model.activations.vision === 'f16' || model.activations.text === 'f16'
        ? { activations: 'f16' as const }
        : {}),
      source: checkpoint.source,
    };
    const created = new WhyLesionModel(
      gpu,
      ownsGpu,
      model,
      inputs,
      preprocessing,
      vocabPath,
      exifRotate,
      maxImagePixels,
      identity,
    );
    created.tokenizerLoad = tokenizerLoad;
    created.transformersSteps = transformersSteps;
    return created;
  }

  /** Starts reading the tokenizer (see LoadOptions.preloadTokenizer); a failure is reported when text is first encoded. */
  static preloadTokenizer(vocabPath: string | undefined): Promise<Tokenizer> {
    const load = withPermissionHints(() => loaders.loadTokenizer(vocabPath)).then((tokenizer) => {
      trace('tokenizer loaded');
      return tokenizer;
    });
    load.catch(() => undefined); // not unhandled: tokenizer() returns it, and reports the failure, on first use
    return load;
  }

  /** The CLIP tokenizer, read on first use (image-only work never touches the vocabulary). */
  tokenizer(): Promise<Tokenizer> {
    this.tokenizerLoad ??= WhyLesionModel.preloadTokenizer(this.vocabPath);
    // A failed read is not remembered: the user may fix the file and call again.
    this.tokenizerLoad.catch(() => (this.tokenizerLoad = undefined));
    return this.tokenizerLoad;
  }

  /** Token ids [texts.length, context_length] of prompts, as open_clip's tokenizer gives them. */
  async tokenize(texts: readonly string[]): Promise<Int32Array> {
    return (await this.tokenizer()).tokenize([...texts], this.inputs.contextLength);
  }

  get embedDim(): number {
    return this.inputs.embedDim;
  }

  /** exp(logit_scale): the temperature applied to cosine similarities (100 for CLIP). */
  get logitScale(): number {
    return this.model.logitScale;
  }

  get dtype(): ComputeDtype {
    return this.model.dtype;
  }

  /** Each tower's block activations (see LoadOptions.activations). */
  get activations(): EmbeddingModel['activations'] {
    return this.model.activations;
  }

  get adapter(): Gpu['adapterInfo'] {
    return this.gpu.adapterInfo;
  }

  /** The open_clip eval preprocessing of one image: float32 [3, S, S]. */
  preprocess(input: ImageInput, name?: string): Promise<Float32Array> {
    return withPermissionHints(() => this.preprocessInput(input, name));
  }

  private async preprocessInput(input: ImageInput, name?: string): Promise<Float32Array> {
    const p = this.preprocessing;
    const opts: PreprocessOptions = {
      size: p.size,
      mean: p.mean,
      std: p.std,
      ...this.transformersSteps,
      exifRotate: this.exifRotate,
      maxImagePixels: this.maxImagePixels,
    };
    if (typeof input === 'string') return preprocessImage(await platform.readImage(input), opts, input);
    if (input instanceof Uint8Array) return preprocessImage(input, opts, name ?? 'the image buffer');
    if (input instanceof ArrayBuffer) return preprocessImage(new Uint8Array(input), opts, name ?? 'the image buffer');
    if (typeof Blob !== 'undefined' && input instanceof Blob) {
      const fileName = (input as Partial<File>).name || name || 'the image file';
      return preprocessImage(new Uint8Array(await input.arrayBuffer()), opts, fileName);
    }
    if (input && typeof input === 'object' && 'bitmap' in input) return preprocessJimp(input, opts, name);
    const decoded = await platform.decodedPixels(input);
    if (decoded) return preprocessJimp(decoded, opts, name);
    throw new UserError(
      'An image input must be a path or URL, encoded image bytes (Uint8Array, ArrayBuffer, Blob, File), a jimp image, or in a browser an ImageBitmap, <img>, canvas or ImageData.',
    );
  }

  /** Image embeddings (one row per input), as open_clip's encode_image; `normalize` gives unit rows. */
  async encodeImage(
    inputs: ImageInput | readonly ImageInput[],
    options: { normalize?: boolean } = {},
  ): Promise<Float32Array[]> {
    const list = Array.isArray(inputs) ? inputs : [inputs as ImageInput];
    if (list.length === 0) return [];
    const pixels = await Promise.all(list.map((input) => this.preprocess(input)));
    const size = pixels[0]!.length;
    const batch = new Float32Array(size * pixels.length);
    pixels.forEach((p, i) => {
      batch.set(p, i * size);
    });
    const name = (i: number): string =>
      typeof list[i] === 'string' ? `the image ${list[i] as string}` : `image ${i + 1} of ${list.length}`;
    return this.rows(await this.model.encodePixels(batch, pixels.length), options.normalize, name);
  }

  /** Embeddings of preprocessed pixels [B, 3, S, S]. */
  async encodePixels(
    pixels: Float32Array,
    batch: number,
    options: { normalize?: boolean } = {},
  ): Promise<Float32Array[]> {
    return this.rows(
      await this.model.encodePixels(pixels, batch),
      options.normalize,
      (i) => `image ${i + 1} of ${batch}`,
    );
  }

  /** Text embeddings (one row per prompt), as open_clip's encode_text; repeated prompts are computed once. */
  async encodeText(texts: string | readonly string[], options: { normalize?: boolean } = {}): Promise<Float32Array[]> {
    const list = typeof texts === 'string' ? [texts] : [...texts];
    const notText = list.findIndex((t) => typeof t !== 'string');
    if (notText >= 0) {
      const value: unknown = list[notText];
      const kind =
        value === null || value === undefined
          ? String(value)
          : typeof value === 'object'
            ? 'an object'
            : `a ${typeof value}`;
      throw new UserError(`Text ${notText + 1} of ${list.length} is ${kind}, not a string; pass prompts as strings.`);
    }
    const ctx = this.inputs.contextLength;
    const ids = await this.tokenize(list);
    const row = (i: number): Int32Array => ids.subarray(i * ctx, (i + 1) * ctx);
    const keys = list.map((_, i) => row(i).join(','));
    const firstRow = new Map<string, number>();
    keys.forEach((key, i) => {
      firstRow.has(key) || firstRow.set(key, i);
    });
    // Rows are gathered here, not re-read from the cache, which concurrent calls may evict from meanwhile.
    const found = new Map<string, Float32Array>();
    const missing: string[] = [];
    for (const key of firstRow.keys()) {
      const cached = this.textCache.get(key);
      if (cached) found.set(key, cached);
      else missing.push(key);
    }
    if (missing.length > 0) {
      const missingIds = new Int32Array(missing.length * ctx);
      missing.forEach((key, i) => {
        missingIds.set(row(firstRow.get(key)!), i * ctx);
      });
      const text = (i: number): string => {
        const index = firstRow.get(missing[i]!)!;
        const shown = list[index]!.length > 40 ? `${list[index]!.slice(0, 40)}…` : list[index];
        return `prompt ${index + 1} of ${list.length} (${JSON.stringify(shown)})`;
      };
      const rows = this.rows(await this.model.encodeTokens(missingIds, missing.length), false, text);
      missing.forEach((key, i) => {
        found.set(key, rows[i]!);
        if (this.textCache.size >= TEXT_CACHE_LIMIT)
          this.textCache.delete(this.textCache.keys().next().value as string);
        this.textCache.set(key, rows[i]!);
      });
    }
    return keys.map((key) => {
      const embedding = found.get(key)!;
      return options.normalize ? normalized(embedding) : embedding.slice();
    });
  }

  /** Embeddings of token ids [B, context_length]. */
  async encodeTokens(ids: Int32Array, batch: number, options: { normalize?: boolean } = {}): Promise<Float32Array[]> {
    return this.rows(
      await this.model.encodeTokens(ids, batch),
      options.normalize,
      (i) => `token row ${i + 1} of ${batch}`,
    );
  }

  /**
   * Every block's output of one image forward, read back by name (`vision.ln_pre`, `vision.block00`, ...,
   * `vision.pooled`, `vision.out`): for comparing with another implementation's forward hooks. At most
   * maxBatch('image') images; the last block holds only the class rows (`vision.blockNN.kept`, [B, W]).
   */
  dumpPixels(pixels: Float32Array, batch: number): Promise<StepDump> {
    return this.model.dumpPixels(pixels, batch);
  }

  /** Every block's output of one text forward (`text.embed`, `text.block00`, ..., `text.pooled`, `text.out`), rows [B, max(EOT)+1, W]. */
  dumpTokens(ids: Int32Array, batch: number): Promise<StepDump> {
    return this.model.dumpTokens(ids, batch);
  }

  /**
   * Zero-shot label probabilities: softmax over texts of logit_scale · cos(image, text), per image
   * (as the model card computes them). Embeddings may be raw or normalized.
   */
  classify(images: readonly Float32Array[], texts: readonly Float32Array[]): number[][] {
    if (texts.length === 0) throw new UserError('Zero-shot classification needs at least one label.');
    for (const [what, rows] of [
      ['image', images],
      ['text', texts],
    ] as const) {
      rows.forEach((row, i) => {
        if (row.length !== this.embedDim || !row.some((v) => v !== 0) || row.some((v) => !Number.isFinite(v))) {
          throw new UserError(
            `The ${what} embedding ${i + 1} has ${row.length} values${row.length === this.embedDim ? ' that are all zero or not finite' : `, not ${this.embedDim}`}; pass rows from this model's encodeImage/encodeText.`,
          );
        }
      });
    }
    const t = texts.map(normalized);
    return images.map((image) => {
      const i = normalized(image);
      const logits = t.map((row) => this.logitScale * dot(i, row));
      return softmax(logits);
    });
  }

  /**
   * Measures every matmul kernel this adapter can run on the shapes of these forwards, keeps the fastest
   * correct one per shape for this model (and, with `save`, for later processes on the same adapter), and
   * returns the measurements. Takes about as long as a few forwards per shape.
   */
  tune(options: TuneOptions = {}): Promise<{ results: ShapeResult[]; file?: string }> {
    return withPermissionHints(() => this.tuneMatmuls(options));
  }

  private async tuneMatmuls(options: TuneOptions): Promise<{ results: ShapeResult[]; file?: string }> {
    const S = this.inputs.imageSize;
    if (options.save !== false) loaders.tuning.checkWritable(); // before minutes of tuning, not after
    const tuning = tuningOf(this.model.policy);
    tuning.requested.clear();
    // Forwards planned afresh record every matmul shape they use (their outputs are not needed).
    await this.model.clearPlans();
    for (const batch of options.batches ?? [1])
      await this.model.encodePixels(new Float32Array(batch * 3 * S * S), batch);
    const texts = options.texts ?? ['dark brown', 'bleeding', 'irregular shape'];
    if (texts.length > 0) await this.model.encodeTokens(await this.tokenize(texts), texts.length);
    const results = await tuneMatmuls(this.model.policy, [...tuning.requested.values()], {
      runs: options.runs,
      onShape: options.onShape,
    });
    await this.model.clearPlans(); // later forwards are planned with the new choices
    const file = options.save === false ? undefined : loaders.tuning.save(this.model.policy, results);
    return { results, file };
  }

  /** Frees the model's GPU memory (and the device, when the model acquired it). */
  dispose(): void {
    this.model.dispose();
    this.textCache.clear();
    if (this.ownsGpu) this.gpu.destroy();
  }

  /** Splits a forward's output into rows, refusing a row with NaN/Inf: a number that is not one is never returned. */
  private rows(flat: Float32Array, normalize: boolean | undefined, nameRow: (index: number) => string): Float32Array[] {
    const E = this.embedDim;
    const out: Float32Array[] = [];
    for (let r = 0; r < flat.length / E; r++) {
      const row = flat.slice(r * E, (r + 1) * E);
      if (!row.every(Number.isFinite)) {
        const halves = this.model.activations.vision === 'f16' || this.model.activations.text === 'f16';
        throw new UserError(
          halves
            ? `The embedding of ${nameRow(r)} holds NaN or Inf: the model's weights or this input produce non-finite values, or a value inside a block passed f16's range (±65504); load the model with activations 'f32' (--activations f32), check the input, or re-download the model.`
            : `The embedding of ${nameRow(r)} holds NaN or Inf: the model's weights or this input produce non-finite values; check the input, or re-download the model.`,
        );
      }
      out.push(normalize ? normalized(row) : row);
    }
    return out;
  }
}

/**
 * Loads a model and uploads its weights to the GPU. `source` is a folder path (open_clip_config.json +
 * open_clip_model.safetensors or .bin, or a transformers CLIPModel's config.json + model.safetensors or
 * pytorch_model.bin) or `hf-hub:ID` of either on Node and Deno; in a browser
 * `hf-hub:ID` or a folder URL (read by HTTP range requests, kept in the origin's storage); anywhere, the
 * picked config and safetensors files (File / Blob).
 */
export function loadModel(source: ModelSource, options: LoadOptions = {}): Promise<WhyLesionModel> {
  return withPermissionHints(() => load(source, options));
}

async function load(source: ModelSource, options: LoadOptions): Promise<WhyLesionModel> {
  maxImagePixels(options); // a bad limit is refused before the (slow) load
  const onDownload = options.onProgress
    ? (file: string, loaded: number, total: number | undefined) =>
        options.onProgress!({ stage: 'download', file, loaded, total })
    : undefined;
  trace('load start');
  // Before any device of this process makes Mesa create its cache files (its index exists from then on).
  const firstRunHere = options.warmShaders === true && !options.device && platform.freshShaderCache();
  // Parsing the vocabulary overlaps the weights' reads (measured: bench/README.md, cold start).
  let tokenizerLoad = options.preloadTokenizer ? WhyLesionModel.preloadTokenizer(options.vocabPath) : undefined;
  const checkpoint = await loaders.openModel(source, { hub: options.hub, onDownload, storage: options.storage });
  trace('checkpoint opened', '(header, config, identity hash)');
  // A transformers checkpoint's own vocab.json + merges.txt, unless the caller named a vocabulary.
  const vocabPath = options.vocabPath ?? checkpoint.vocabPath;
  if (tokenizerLoad && vocabPath !== options.vocabPath) tokenizerLoad = WhyLesionModel.preloadTokenizer(vocabPath);
  let transformersSteps: PreprocessOptions | undefined;
  let gpu: Gpu;
  let policy: KernelPolicy;
  const kernels = options.kernels ?? (platform.setting('WHYLESION_KERNELS') as KernelFamily | undefined);
  try {
    if (checkpoint.preprocessor) {
      const { raw, what } = checkpoint.preprocessor;
      transformersSteps = transformersPreprocessing(raw, what, checkpoint.config.vision.imageSize);
    }
    gpu = await Gpu.create({ device: options.device });
    trace('device ready');
  } catch (e) {
    await checkpoint.source.close();
    throw e;
  }
  try {
    policy = KernelPolicy.create(gpu, kernels);
  } catch (e) {
    gpu.destroy();
    await checkpoint.source.close();
    throw e;
  }
  if (options.onProgress)
    gpu.onCompile = (compiled, requested) => options.onProgress!({ stage: 'compile', compiled, requested });
  try {
    loaders.tuning.apply(policy, options.kernelTuning);
    const family = familyOf(checkpoint);
    const warming =
      firstRunHere && policy.family === 'cpu-subgroup'
        ? warmImageShaders({
            family,
            config: checkpoint.config,
            imageSize: family.inputs(checkpoint.config).imageSize,
            kernels,
            applyTuning: (helperPolicy) => loaders.tuning.apply(helperPolicy, options.kernelTuning),
            dtype: options.dtype ?? 'f32',
            activations: options.activations,
          })
        : undefined;
    const loaded = await family.load(policy, checkpoint.config, checkpoint.source, {
      dtype: options.dtype,
      activations: options.activations,
      maxBatch: options.maxBatch,
      planBudgetBytes: options.planBudgetBytes,
      onTensor: (tensor, loaded, total) => options.onProgress?.({ stage: 'weights', tensor, loaded, total }),
    });
    return await WhyLesionModel.create(
      warming ? afterWarmup(loaded, warming) : loaded,
      family.inputs(checkpoint.config),
      family.preprocessing(checkpoint.config),
      gpu,
      !options.device,
      vocabPath,
      options.exifRotate ?? false,
      options.maxImagePixels,
      checkpoint.identity,
      tokenizerLoad,
      transformersSteps,
    );
  } catch (e) {
    gpu.destroy();
    throw e;
  } finally {
    await checkpoint.source.close();
  }
}

export function normalized(row: Float32Array): Float32Array {
  let n = 0;
  for (const v of row) n += v * v;
  n = Math.sqrt(n);
  return row.map((v) => v / n);
}

/** Σ a[i]·b[i]: the cosine of two unit rows. */
export function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** exp(l − max) / Σ exp(l − max): probabilities from logits, stable for large ones. */
export function softmax(logits: number[]): number[] {
  const max = Math.max(...logits);
  const e = logits.map((l) => Math.exp(l - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}
