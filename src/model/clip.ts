import { UserError, present } from '../errors.js';
import type { Dispatch, Gpu } from '../runtime/gpu.js';
import { Executor, type ExecutorMemory, type Program } from '../graph/executor.js';
import type { KernelPolicy } from '../kernels/policy.js';
import { attentionTakesHalves, layerNormWritesHalves, matmulTakesHalves, type FloatDtype } from '../kernels/index.js';
import type { TensorSource } from './tensor-source.js';
import type { ClipConfig } from './config.js';
import { mlpWidth } from './schema.js';
import { textGraph, visionGraph, type TowerOptions } from './towers.js';
import { uploadClipWeights, type ClipWeights, type ComputeDtype } from './weights.js';

export type { ComputeDtype } from './weights.js';

export interface ClipLoadOptions {
  /** Weight storage on the GPU: f32 (default) or f16 (half the memory; needs shader-f16). */
  dtype?: ComputeDtype;
  /**
   * The activations passed between the kernels inside each transformer block (layernorm → matmul, matmul →
   * attention → matmul, matmul → matmul): f16 by default with dtype f16, else f32. The residual stream and the
   * outputs stay f32. 'f32' keeps f16 weights' numbers closer to f32's; 'f16' with f32 weights is refused.
   */
  activations?: FloatDtype;
  /**
   * Exact shortcuts (default on): the text tower runs max(EOT)+1 positions, and the image tower's last block
   * finishes only the class tokens. Off computes every position, as open_clip does (for verification).
   */
  exactShortcuts?: boolean;
  /**
   * Most images or prompts per forward; larger batches are split. The GPU's storage-binding limit sets
   * the default, and a smaller cap lowers peak GPU memory (activations scale with the batch).
   */
  maxBatch?: number;
  onTensor?: (name: string, index: number, count: number) => void;
  /**
   * Bytes the cached forward plans may hold besides the shared activation arena (bind groups, uniforms,
   * constants), least recently used evicted first. Default 16 MiB.
   */
  planBudgetBytes?: number;
}

/** One kernel's GPU time in a profiled forward. */
export interface KernelTiming {
  label: string;
  kernel: string;
  ms: number;
  flops?: number;
  bytes?: number;
}

function timings(measured: { dispatch: Dispatch; ms: number }[]): KernelTiming[] {
  return measured.map(({ dispatch: d, ms }) => ({
    label: d.label,
    kernel: d.kernel,
    ms,
    flops: d.flops,
    bytes: d.bytes,
  }));
}

/**
 * Each tower's block activations: f16 where asked for (by default with f16 weights) and every kernel of the
 * tower's blocks takes halves at its widths (CLIP's always do), else f32.
 */
function towerActivations(
  config: ClipConfig,
  dtype: ComputeDtype,
  asked: FloatDtype | undefined,
): TowerOptions['activations'] {
  if (asked !== undefined && asked !== 'f32' && asked !== 'f16')
    throw new UserError(`Activations '${String(asked)}' are not f32 or f16; pass one of those.`);
  if (asked === 'f16' && dtype !== 'f16')
    throw new UserError('f16 activations need f16 weights; pass dtype f16 too, or leave activations at f32.');
  const want = asked ?? dtype;
  const takes = (c: { width: number; heads: number; mlpRatio: number }): boolean => {
    const W = c.width,
      hidden = mlpWidth(W, c.mlpRatio);
    return (
      layerNormWritesHalves(W) &&
      attentionTakesHalves(W / c.heads) &&
      matmulTakesHalves(W, 3 * W) &&
      matmulTakesHalves(W, hidden) &&
      matmulTakesHalves(hidden, W)
    );
  };
  // embed_cls under a causal mask adds the class-token attention, which reads f32 only.
  const textTakes = takes(config.text) && !(config.text.embedCls && config.text.causal);
  return {
    vision: want === 'f16' && takes(config.vision) ? 'f16' : 'f32',
    text: want === 'f16' && textTakes ? 'f16' : 'f32',
  };
}

/** Per-step states read back by a debug forward, by name (e.g. `vision.block03`). */
export type StepDump = Map<string, Float32Array>;

/**
 * The open_clip ViT CLIP graph (image tower and text transformer) on the GPU. Knows nothing of files:
 * weights come from a TensorSource, inputs are preprocessed pixels and token ids.
 */
export class ClipModel {
  readonly logitScale: number;
  private readonly executor: Executor;
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;

  readonly gpu: Gpu;

  private constructor(
    /** The kernel family and tuning every plan runs and the weights were laid out for. */
    readonly policy: KernelPolicy,
    readonly config: ClipConfig,
    readonly dtype: ComputeDtype,
    private readonly weights: ClipWeights,
    private readonly batchCap: number,
    private readonly towerOptions: TowerOptions,
    planBudgetBytes: number | undefined,
  ) {
    this.gpu = policy.gpu;
    this.logitScale = weights.logitScale;
    this.executor = new Executor(policy, planBudgetBytes);
  }

  /** Uploads every weight tensor to the GPU, one tensor at a time (`dtype` f16 halves matmul weights). */
  static async load(
    policy: KernelPolicy,
    config: ClipConfig,
    source: TensorSource,
    options: ClipLoadOptions = {},
  ): Promise<ClipModel> {
    const gpu = policy.gpu;
    const dtype = options.dtype ?? 'f32';
    if (options.maxBatch !== undefined && !(Number.isInteger(options.maxBatch) && options.maxBatch >= 1)) {
      throw new UserError(`The maximum batch ${options.maxBatch} is not a positive whole number; pass 1 or more.`);
    }
    if (options.planBudgetBytes !== undefined && !(options.planBudgetBytes >= 0)) {
      throw new UserError(`The plan budget ${options.planBudgetBytes} is not a byte count; pass 0 or more.`);
    }
    if (dtype === 'f16' && !gpu.hasF16) {
      throw new UserError('This GPU adapter has no shader-f16 support, so dtype f16 is unavailable; use dtype f32.');
    }
    const activations = towerActivations(config, dtype, options.activations);
    const weights = await uploadClipWeights(policy, config, source, dtype, options.onTensor);
    const towerOptions = { dtype, activations, exactShortcuts: options.exactShortcuts ?? true };
    return new ClipModel(
      policy,
      config,
      dtype,
      weights,
      options.maxBatch ?? Infinity,
      towerOptions,
      options.planBudgetBytes,
    );
  }

  /** The dtype of each tower's block activations (see ClipLoadOptions.activations). */
  get activations(): TowerOptions['activations'] {
    return this.towerOptions.activations;
  }

  /** Largest batch one forward runs: every activation must fit one storage binding, and at most the load's `maxBatch`. */
  maxBatch(tower: 'image' | 'text'): number {
    const limit = this.gpu.limits.maxStorageBufferBindingSize;
    const c = tower === 'image' ? this.config.vision : this.config.text;
    const seq =
      tower === 'image'
        ? (c as ClipConfig['vision']).imageSize ** 2 / (c as ClipConfig['vision']).patchSize ** 2 + 1
        : this.config.text.contextLength + (this.config.text.embedCls ? 1 : 0);
    const widest = Math.max(mlpWidth(c.width, c.mlpRatio), 3 * c.width) * 4 * seq;
    return Math.max(1, Math.min(64, this.batchCap, Math.floor(limit / widest)));
  }

  /**
   * open_clip's encode_image on preprocessed pixels [B, 3, S, S]: raw (unnormalized) embeddings [B, E].
   * Larger batches than one forward can hold are split.
   */
  async encodePixels(pixels: Float32Array, batch: number): Promise<Float32Array> {
    const s = this.config.vision.imageSize;
    this.checkPixels(pixels, batch);
    return this.inBatches(batch, this.maxBatch('image'), (from, n) =>
      this.runVision(pixels.subarray(from * 3 * s * s, (from + n) * 3 * s * s), n),
    );
  }

  /** open_clip's encode_text on token ids [B, context_length]: raw embeddings [B, E]. */
  async encodeTokens(ids: Int32Array, batch: number): Promise<Float32Array> {
    const ctx = this.config.text.contextLength;
    this.checkTokens(ids, batch);
    return this.inBatches(batch, this.maxBatch('text'), (from, n) =>
      this.runText(ids.subarray(from * ctx, (from + n) * ctx), n),
    );
  }

  /**
   * Debug forward: reads back every block's output by name (one submission per block): `vision.ln_pre`,
   * `vision.blockNN` ([B, T, W]; with exact shortcuts the last is `vision.blockNN.kept`, the class rows [B, W]),
   * `vision.pooled`, `vision.out`. At most maxBatch('image') images.
   */
  dumpPixels(pixels: Float32Array, batch: number): Promise<StepDump> {
    this.checkPixels(pixels, batch);
    this.checkDumpBatch('image', batch);
    return this.serialized(async () => {
      return this.executor.runCheckpoints(this.visionProgram(batch), [pixels]);
    });
  }

  /**
   * Debug forward of the text tower: `text.embed` and `text.blockNN` ([B, seq, W]; with exact shortcuts seq is
   * max(EOT)+1, else the context length), `text.pooled` (ln_final of the EOT rows), `text.out`. At most maxBatch('text') prompts.
   */
  dumpTokens(ids: Int32Array, batch: number): Promise<StepDump> {
    this.checkTokens(ids, batch);
    this.checkDumpBatch('text', batch);
    return this.serialized(async () => {
      const { program, inputs } = this.prepareText(ids, batch);
      return this.executor.runCheckpoints(program, inputs);
    });
  }

  /** Times every kernel of one image forward with timestamp queries (one compute pass per dispatch). */
  profilePixels(pixels: Float32Array, batch: number): Promise<KernelTiming[]> {
    return this.serialized(async () => {
      return timings(await this.executor.profile(this.visionProgram(batch), [pixels]));
    });
  }

  /** Times every kernel of one text forward. */
  profileTokens(ids: Int32Array, batch: number): Promise<KernelTiming[]> {
    return this.serialized(async () => {
      const { program, inputs } = this.prepareText(ids, batch);
      return timings(await this.executor.profile(program, inputs));
    });
  }

  /** The kernels an image forward at this batch size runs, in order (what the rules and tuning chose). */
  visionKernels(batch: number): Promise<string[]> {
    return this.serialized(() => this.executor.kernels(this.visionProgram(batch)));
  }

  /** What the planned forwards hold: the shared activation arena and the plans' own buffers. */
  get memory(): ExecutorMemory {
    return this.executor.memory;
  }

  /** Drops the planned forwards and their activation memory; the next forwards are planned again, e.g. with new kernel choices. */
  clearPlans(): Promise<void> {
    return this.serialized(async () => this.executor.clear());
  }

  /** Frees every GPU buffer of the model; the Gpu itself stays usable. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.executor.clear();
    this.weights.scope.destroy();
  }

  // ---- forward passes ----

  private checkPixels(pixels: Float32Array, batch: number): void {
    const s = this.config.vision.imageSize;
    if (!Number.isInteger(batch) || batch < 0 || pixels.length !== batch * 3 * s * s) {
      throw new UserError(
        `Pixels hold ${pixels.length} values; a batch of ${batch} images at ${s}×${s} needs ${batch * 3 * s * s} ([B, 3, ${s}, ${s}]).`,
      );
    }
  }

  private checkTokens(ids: Int32Array, batch: number): void {
    const ctx = this.config.text.contextLength;
    if (!Number.isInteger(batch) || batch < 0 || ids.length !== batch * ctx) {
      throw new UserError(
        `Token ids hold ${ids.length} values; ${batch} prompts need ${batch * ctx} (context length ${ctx}).`,
      );
    }
    const vocab = this.config.text.vocabSize;
    for (const id of ids) {
      if (!(id >= 0 && id < vocab))
        throw new UserError(
          `Token id ${id} is outside the vocabulary (0..${vocab - 1}); tokenize with this model's tokenizer.`,
        );
    }
  }

  /** A debug forward reads every block back from one forward's buffers, so it cannot split a batch. */
  private checkDumpBatch(tower: 'image' | 'text', batch: number): void {
    const most = this.maxBatch(tower);
    if (batch > most)
      throw new UserError(
        `A per-block readout holds at most ${most} ${tower === 'image' ? 'images' : 'prompts'} on this GPU, not ${batch}; pass fewer.`,
      );
  }

  private async inBatches(
    total: number,
    maxBatch: number,
    run: (from: number, n: number) => Promise<Float32Array>,
  ): Promise<Float32Array> {
    const E = this.config.embedDim;
    const out = new Float32Array(total * E);
    for (let from = 0; from < total; from += maxBatch) {
      const n = Math.min(maxBatch, total - from);
      out.set(await run(from, n), from * E);
    }
    return out;
  }

  /** Forwards share the activation arena, so they run one at a time in call order. */
  private serialized<T>(work: () => Promise<T>): Promise<T> {
    if (this.disposed) return Promise.reject(new Error('This model was disposed; load it again.'));
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private runVision(pixels: Float32Array, batch: number): Promise<Float32Array> {
    return this.serialized(async () => {
      const [out] = await this.executor.run(this.visionProgram(batch), [pixels]);
      return new Float32Array(present(out, 'image embeddings'));
    });
  }

  private runText(ids: Int32Array, batch: number): Promise<Float32Array> {
    return this.serialized(async () => {
      const { program, inputs } = this.prepareText(ids, batch);
      const [out] = await this.executor.run(program, inputs);
      return new Float32Array(present(out, 'text embeddings'));
    });
  }

  /**
   * With the causal mask, the pooled row (the EOT for argmax pooling) depends only on the rows up to it, so the
   * text tower runs on max(pooled row)+1 positions instead of the full context: exact, and far less work for
   * short prompts. Without the mask every row sees every other, so the whole context runs.
   */
  private prepareText(ids: Int32Array, batch: number): { program: Program; inputs: Uint32Array[] } {
    const { contextLength: ctx, pool, causal, embedCls } = this.config.text;
    if (embedCls) return this.prepareClsText(ids, batch);
    const eot = new Uint32Array(batch);
    for (let b = 0; b < batch; b++) {
      let best = pool === 'last' ? ctx - 1 : 0;
      if (pool === 'argmax') for (let t = 1; t < ctx; t++) if (ids[b * ctx + t]! > ids[b * ctx + best]!) best = t; // first maximum, as torch.argmax
      eot[b] = best;
    }
    const seq = this.towerOptions.exactShortcuts && causal ? Math.max(...eot) + 1 : ctx;
    const program = this.textProgram(batch, seq);
    const input = new Uint32Array(batch * seq);
    for (let b = 0; b < batch; b++) {
      for (let t = 0; t < seq; t++) input[b * seq + t] = ids[b * ctx + t]!;
      eot[b]! += b * seq;
    }
    return { program, inputs: [input, eot] };
  }

  /**
   * embed_cls (open_clip's TextTransformer.forward): the class token (table row vocabSize) follows the whole
   * context and is the pooled row; under the causal mask it attends to key 0 and to key j when token j−1 is not
   * pad_id (open_clip's build_cls_mask, kept as it is).
   */
  private prepareClsText(ids: Int32Array, batch: number): { program: Program; inputs: Uint32Array[] } {
    const { contextLength: ctx, causal, vocabSize, padId } = this.config.text;
    const seq = ctx + 1;
    const input = new Uint32Array(batch * seq);
    const pooled = new Uint32Array(batch);
    const keys = new Uint32Array(batch * seq);
    for (let b = 0; b < batch; b++) {
      for (let t = 0; t < ctx; t++) input[b * seq + t] = ids[b * ctx + t]!;
      input[b * seq + ctx] = vocabSize;
      pooled[b] = b * seq + ctx;
      keys[b * seq] = 1;
      for (let j = 1; j < seq; j++) keys[b * seq + j] = ids[b * ctx + j - 1] === padId ? 0 : 1;
    }
    return { program: this.textProgram(batch, seq), inputs: causal ? [input, pooled, keys] : [input, pooled] };
  }

  private textProgram(batch: number, seq: number): Program {
    return this.executor.program(`text/${batch}/${seq}`, () =>
      textGraph(this.config, this.weights.text, batch, seq, this.towerOptions),
    );
  }

  private visionProgram(batch: number): Program {
    return this.executor.program(`vision/${batch}`, () =>
      visionGraph(this.config, this.weights.vision, batch, this.towerOptions),
    );
  }
}
