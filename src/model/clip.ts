import { UserError } from '../errors.js';
import type { Dispatch, Gpu } from '../runtime/gpu.js';
import * as K from '../kernels/index.js';
import type { TensorSource } from './tensor-source.js';
import type { ClipConfig } from './config.js';
import { mlpWidth } from './layout.js';
import { uploadClipWeights, type Block, type ComputeDtype, type TextWeights, type VisionWeights } from './weights.js';

export type { ComputeDtype } from './weights.js';

export interface ClipLoadOptions {
  /** Weight storage on the GPU: f32 (default) or f16 (half the memory; needs shader-f16). */
  dtype?: ComputeDtype;
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
}

/** A recorded forward for one tower at one batch size (and text length): buffers, dispatches, readouts. */
interface Plan {
  scope: K.Scope;
  input: GPUBuffer;
  output: GPUBuffer;
  outputBytes: number;
  dispatches: Dispatch[];
  /** Named intermediate states (block outputs) for debug readback: dispatches[0..end) produce `buffer`. */
  checkpoints: { name: string; end: number; buffer: GPUBuffer; bytes: number }[];
  /** Text plans: the EOT row of each prompt in the flattened [B·T] sequence. */
  eotIndex?: GPUBuffer;
}

/** One kernel's GPU time in a profiled forward. */
export interface KernelTiming { label: string; kernel: string; ms: number; flops?: number; bytes?: number }

function timings(measured: { dispatch: Dispatch; ms: number }[]): KernelTiming[] {
  return measured.map(({ dispatch: d, ms }) => ({ label: d.label, kernel: d.kernel, ms, flops: d.flops, bytes: d.bytes }));
}

/** Per-step states read back by a debug forward, by name (e.g. `vision.block03`). */
export type StepDump = Map<string, Float32Array>;

/**
 * The open_clip ViT CLIP graph (image tower and text transformer) on the GPU. Knows nothing of files:
 * weights come from a TensorSource, inputs are preprocessed pixels and token ids.
 */
export class ClipModel {
  readonly logitScale: number;
  private readonly plans = new Map<string, Plan>();
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;

  private constructor(
    readonly gpu: Gpu,
    readonly config: ClipConfig,
    readonly dtype: ComputeDtype,
    private readonly weights: K.Scope,
    private readonly vision: VisionWeights,
    private readonly text: TextWeights,
    logitScale: number,
    private readonly batchCap: number,
    private readonly exactShortcuts: boolean,
  ) {
    this.logitScale = logitScale;
  }

  /** Uploads every weight tensor to the GPU, one tensor at a time (`dtype` f16 halves matmul weights). */
  static async load(gpu: Gpu, config: ClipConfig, source: TensorSource, options: ClipLoadOptions = {}): Promise<ClipModel> {
    const dtype = options.dtype ?? 'f32';
    if (options.maxBatch !== undefined && !(Number.isInteger(options.maxBatch) && options.maxBatch >= 1)) {
      throw new UserError(`The maximum batch ${options.maxBatch} is not a positive whole number; pass 1 or more.`);
    }
    if (dtype === 'f16' && !gpu.hasF16) {
      throw new UserError('This GPU adapter has no shader-f16 support, so dtype f16 is unavailable; use dtype f32.');
    }
    const w = await uploadClipWeights(gpu, config, source, dtype, options.onTensor);
    return new ClipModel(gpu, config, dtype, w.scope, w.vision, w.text, w.logitScale, options.maxBatch ?? Infinity, options.exactShortcuts ?? true);
  }

  /** Largest batch one forward runs: every activation must fit one storage binding, and at most the load's `maxBatch`. */
  maxBatch(tower: 'image' | 'text'): number {
    const limit = this.gpu.limits.maxStorageBufferBindingSize;
    const c = tower === 'image' ? this.config.vision : this.config.text;
    const seq = tower === 'image' ? (c as ClipConfig['vision']).imageSize ** 2 / (c as ClipConfig['vision']).patchSize ** 2 + 1 : this.config.text.contextLength;
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
      this.runVision(pixels.subarray(from * 3 * s * s, (from + n) * 3 * s * s), n));
  }

  /** open_clip's encode_text on token ids [B, context_length]: raw embeddings [B, E]. */
  async encodeTokens(ids: Int32Array, batch: number): Promise<Float32Array> {
    const ctx = this.config.text.contextLength;
    this.checkTokens(ids, batch);
    return this.inBatches(batch, this.maxBatch('text'), (from, n) => this.runText(ids.subarray(from * ctx, (from + n) * ctx), n));
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
      const plan = await this.visionPlan(batch);
      this.gpu.write(plan.input, pixels);
      return this.runCheckpoints(plan);
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
      const { plan } = await this.prepareText(ids, batch);
      return this.runCheckpoints(plan);
    });
  }

  /** Times every kernel of one image forward with timestamp queries (one compute pass per dispatch). */
  profilePixels(pixels: Float32Array, batch: number): Promise<KernelTiming[]> {
    return this.serialized(async () => {
      const plan = await this.visionPlan(batch);
      this.gpu.write(plan.input, pixels);
      return timings(await this.gpu.profile(`vision[B=${batch}]`, plan.dispatches));
    });
  }

  /** Times every kernel of one text forward. */
  profileTokens(ids: Int32Array, batch: number): Promise<KernelTiming[]> {
    return this.serialized(async () => {
      const { plan, seq } = await this.prepareText(ids, batch);
      return timings(await this.gpu.profile(`text[B=${batch},T=${seq}]`, plan.dispatches));
    });
  }

  /** The kernels an image forward at this batch size runs, in order (what the rules and tuning chose). */
  visionKernels(batch: number): Promise<string[]> {
    return this.serialized(async () => (await this.visionPlan(batch)).dispatches.map((d) => d.kernel));
  }

  /** Drops the planned forwards (their buffers too); the next forwards are planned again, e.g. with new kernel choices. */
  clearPlans(): Promise<void> {
    return this.serialized(async () => {
      for (const plan of this.plans.values()) plan.scope.destroy();
      this.plans.clear();
      this.gpu.forgetRunTimes();
    });
  }

  /** Frees every GPU buffer of the model; the Gpu itself stays usable. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const plan of this.plans.values()) plan.scope.destroy();
    this.plans.clear();
    this.weights.destroy();
  }

  // ---- forward passes ----

  private checkPixels(pixels: Float32Array, batch: number): void {
    const s = this.config.vision.imageSize;
    if (!Number.isInteger(batch) || batch < 0 || pixels.length !== batch * 3 * s * s) {
      throw new UserError(`Pixels hold ${pixels.length} values; a batch of ${batch} images at ${s}×${s} needs ${batch * 3 * s * s} ([B, 3, ${s}, ${s}]).`);
    }
  }

  private checkTokens(ids: Int32Array, batch: number): void {
    const ctx = this.config.text.contextLength;
    if (!Number.isInteger(batch) || batch < 0 || ids.length !== batch * ctx) {
      throw new UserError(`Token ids hold ${ids.length} values; ${batch} prompts need ${batch * ctx} (context length ${ctx}).`);
    }
    const vocab = this.config.text.vocabSize;
    for (const id of ids) {
      if (!(id >= 0 && id < vocab)) throw new UserError(`Token id ${id} is outside the vocabulary (0..${vocab - 1}); tokenize with this model's tokenizer.`);
    }
  }

  /** A debug forward reads every block back from one forward's buffers, so it cannot split a batch. */
  private checkDumpBatch(tower: 'image' | 'text', batch: number): void {
    const most = this.maxBatch(tower);
    if (batch > most) throw new UserError(`A per-block readout holds at most ${most} ${tower === 'image' ? 'images' : 'prompts'} on this GPU, not ${batch}; pass fewer.`);
  }

  private async inBatches(total: number, maxBatch: number, run: (from: number, n: number) => Promise<Float32Array>): Promise<Float32Array> {
    const E = this.config.embedDim;
    const out = new Float32Array(total * E);
    for (let from = 0; from < total; from += maxBatch) {
      const n = Math.min(maxBatch, total - from);
      out.set(await run(from, n), from * E);
    }
    return out;
  }

  /** Forwards share plan buffers, so they run one at a time in call order. */
  private serialized<T>(work: () => Promise<T>): Promise<T> {
    if (this.disposed) return Promise.reject(new Error('This model was disposed; load it again.'));
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private runVision(pixels: Float32Array, batch: number): Promise<Float32Array> {
    return this.serialized(async () => {
      const plan = await this.visionPlan(batch);
      this.gpu.write(plan.input, pixels);
      const [out] = await this.gpu.run(`vision[B=${batch}]`, plan.dispatches, [{ buffer: plan.output, bytes: plan.outputBytes }]);
      return new Float32Array(out);
    });
  }

  private runText(ids: Int32Array, batch: number): Promise<Float32Array> {
    return this.serialized(async () => {
      const { plan, seq } = await this.prepareText(ids, batch);
      const [out] = await this.gpu.run(`text[B=${batch},T=${seq}]`, plan.dispatches, [{ buffer: plan.output, bytes: plan.outputBytes }]);
      return new Float32Array(out);
    });
  }

  /**
   * With the causal mask, the EOT row depends only on the rows before it, so the text tower runs on
   * max(EOT)+1 positions instead of the full context: exact, and far less work for short prompts.
   */
  private async prepareText(ids: Int32Array, batch: number): Promise<{ plan: Plan; seq: number }> {
    const ctx = this.config.text.contextLength;
    const eot = new Uint32Array(batch);
    for (let b = 0; b < batch; b++) {
      let best = 0;
      for (let t = 1; t < ctx; t++) if (ids[b * ctx + t] > ids[b * ctx + best]) best = t; // first maximum, as torch.argmax
      eot[b] = best;
    }
    const seq = this.exactShortcuts ? Math.max(...eot) + 1 : ctx;
    const plan = await this.textPlan(batch, seq);
    const input = new Uint32Array(batch * seq);
    for (let b = 0; b < batch; b++) {
      for (let t = 0; t < seq; t++) input[b * seq + t] = ids[b * ctx + t];
      eot[b] += b * seq;
    }
    this.gpu.write(plan.input, input);
    this.gpu.write(plan.eotIndex!, eot);
    return { plan, seq };
  }

  private async runCheckpoints(plan: Plan): Promise<StepDump> {
    const dump: StepDump = new Map();
    let start = 0;
    for (const c of plan.checkpoints) {
      const [bytes] = await this.gpu.run(c.name, plan.dispatches.slice(start, c.end), [{ buffer: c.buffer, bytes: c.bytes }]);
      dump.set(c.name, new Float32Array(bytes));
      start = c.end;
    }
    return dump;
  }

  // ---- planning: buffers and dispatches for one batch shape, made once and reused ----

  private async cachedPlan(key: string, make: (scope: K.Scope) => Promise<Plan>): Promise<Plan> {
    const cached = this.plans.get(key);
    if (cached) {
      this.plans.delete(key); // re-insert: most recently used last
      this.plans.set(key, cached);
      return cached;
    }
    const scope = new K.Scope(this.gpu);
    const plan = await make(scope).catch((e: unknown) => {
      scope.destroy();
      throw e;
    });
    this.plans.set(key, plan);
    if (this.plans.size > 6) {
      const [oldestKey, oldest] = this.plans.entries().next().value as [string, Plan];
      oldest.scope.destroy();
      this.plans.delete(oldestKey);
    }
    return plan;
  }

  private visionPlan(batch: number): Promise<Plan> {
    return this.cachedPlan(`vision/${batch}`, async (scope) => {
      const { imageSize: S, patchSize: P, width: W } = this.config.vision;
      const G = Math.floor(S / P), T = G * G + 1, rows = batch * T, E = this.config.embedDim;
      const w = this.vision;
      const input = scope.storage('vision.pixels', batch * 3 * S * S * 4);
      const patches = scope.storage('vision.patches', batch * G * G * 3 * P * P * 4);
      const embed = scope.storage('vision.patch_embed', batch * G * G * W * 4);
      const h = scope.storage('vision.h', rows * W * 4);
      const x = scope.storage('vision.x', rows * W * 4);
      const pooled = scope.storage('vision.pooled', batch * W * 4);
      const output = scope.storage('vision.out', batch * E * 4);
      const d: Promise<Dispatch | Dispatch[]>[] = [
        K.patchify(scope, 'vision.patchify', { pixels: input, patches, batch, patch: P, grid: G, imageSize: S }),
        K.matmul(scope, 'vision.conv1', { x: patches, w: w.conv, y: embed, M: batch * G * G, N: W, K: 3 * P * P, wDtype: this.dtype }),
        K.visionTokens(scope, 'vision.tokens', { patchEmbed: embed, classEmbedding: w.classEmbedding, pos: w.pos, y: h, batch, seq: T, width: W }),
        K.layerNorm(scope, 'vision.ln_pre', { x: h, gain: w.lnPre[0], shift: w.lnPre[1], y: x, rows, cols: W }),
      ];
      const checkpoints: Plan['checkpoints'] = [];
      const mark = (name: string, buffer: GPUBuffer, bytes: number): void => {
        checkpoints.push({ name, end: d.length, buffer, bytes });
      };
      mark('vision.ln_pre', x, rows * W * 4);
      // Only the class token of each image leaves the tower, so the last block finishes just those rows.
      const keep = this.exactShortcuts
        ? { index: scope.storage('vision.class_rows', Uint32Array.from({ length: batch }, (_, b) => b * T)), rows: batch }
        : undefined;
      const final = this.recordBlocks(scope, d, 'vision', w.blocks, { x, h, batch, seq: T, width: W, heads: this.config.vision.heads, mlpRatio: this.config.vision.mlpRatio, causal: false }, mark, keep);
      d.push(
        K.layerNorm(scope, 'vision.ln_post', { x: final, gain: w.lnPost[0], shift: w.lnPost[1], y: pooled, rows: batch, cols: W, inRowStride: keep ? 1 : T }),
        K.matmul(scope, 'vision.proj', { x: pooled, w: w.proj, y: output, M: batch, N: E, K: W, wDtype: this.dtype }),
      );
      mark('vision.pooled', pooled, batch * W * 4);
      mark('vision.out', output, batch * E * 4);
      return finishPlan(scope, input, output, batch * E * 4, d, checkpoints);
    });
  }

  private textPlan(batch: number, seq: number): Promise<Plan> {
    return this.cachedPlan(`text/${batch}/${seq}`, async (scope) => {
      const { width: W } = this.config.text;
      const rows = batch * seq, E = this.config.embedDim;
      const w = this.text;
      const input = scope.storage('text.ids', rows * 4);
      const eotIndex = scope.storage('text.eot_index', batch * 4);
      const x = scope.storage('text.x', rows * W * 4);
      const h = scope.storage('text.h', rows * W * 4);
      const eotRows = scope.storage('text.eot_rows', batch * W * 4);
      const pooled = scope.storage('text.pooled', batch * W * 4);
      const output = scope.storage('text.out', batch * E * 4);
      const d: Promise<Dispatch | Dispatch[]>[] = [
        K.embedTokens(scope, 'text.embed', { ids: input, chunks: w.tokenChunks, pos: w.pos, y: x, rows, seq, width: W, wDtype: this.dtype }),
      ];
      const checkpoints: Plan['checkpoints'] = [];
      const mark = (name: string, buffer: GPUBuffer, bytes: number): void => {
        checkpoints.push({ name, end: d.length, buffer, bytes });
      };
      mark('text.embed', x, rows * W * 4);
      this.recordBlocks(scope, d, 'text', w.blocks, { x, h, batch, seq, width: W, heads: this.config.text.heads, mlpRatio: this.config.text.mlpRatio, causal: true }, mark);
      d.push(
        K.gatherRows(scope, 'text.eot', { x, index: eotIndex, y: eotRows, rows: batch, width: W }),
        K.layerNorm(scope, 'text.ln_final', { x: eotRows, gain: w.lnFinal[0], shift: w.lnFinal[1], y: pooled, rows: batch, cols: W }),
        K.matmul(scope, 'text.proj', { x: pooled, w: w.proj, y: output, M: batch, N: E, K: W, wDtype: this.dtype }),
      );
      mark('text.pooled', pooled, batch * W * 4);
      mark('text.out', output, batch * E * 4);
      const plan = await finishPlan(scope, input, output, batch * E * 4, d, checkpoints);
      plan.eotIndex = eotIndex;
      return plan;
    });
  }

  /**
   * x ← x + attn(ln_1(x)); x ← x + mlp(ln_2(x)) for every block, residual adds fused into the matmuls.
   * With `keep`, the last block finishes only those rows (the class tokens): attention still reads every
   * row's keys and values, then out_proj and the MLP run on the kept rows alone. That is exact, since
   * every other kernel computes each row on its own. Returns the buffer holding the final rows.
   */
  private recordBlocks(
    scope: K.Scope, d: Promise<Dispatch | Dispatch[]>[], tower: string, blocks: Block[],
    a: { x: GPUBuffer; h: GPUBuffer; batch: number; seq: number; width: number; heads: number; mlpRatio: number; causal: boolean },
    mark: (name: string, buffer: GPUBuffer, bytes: number) => void,
    keep?: { index: GPUBuffer; rows: number },
  ): GPUBuffer {
    const rows = a.batch * a.seq, W = a.width, hidden = mlpWidth(W, a.mlpRatio);
    const qkv = scope.storage(`${tower}.qkv`, rows * 3 * W * 4);
    const attn = scope.storage(`${tower}.attn`, rows * W * 4);
    const mlp = scope.storage(`${tower}.mlp`, rows * hidden * 4);
    const act = this.config.quickGelu ? 'quick_gelu' : 'gelu';
    const wDtype = this.dtype;
    let result = a.x;
    blocks.forEach((b, i) => {
      const p = `${tower}.block${String(i).padStart(2, '0')}`;
      d.push(
        K.layerNorm(scope, `${p}.ln_1`, { x: a.x, gain: b.ln1[0], shift: b.ln1[1], y: a.h, rows, cols: W }),
        K.matmul(scope, `${p}.attn.in_proj`, { x: a.h, w: b.inProj, bias: b.inProjBias, y: qkv, M: rows, N: 3 * W, K: W, wDtype }),
        K.attention(scope, `${p}.attn`, { qkv, out: attn, batch: a.batch, seq: a.seq, heads: a.heads, headDim: W / a.heads, causal: a.causal }),
      );
      let x = a.x, attnOut = attn, n = rows, name = p;
      if (keep && i === blocks.length - 1) {
        [x, attnOut, n, name] = [scope.storage(`${p}.kept.x`, keep.rows * W * 4), scope.storage(`${p}.kept.attn`, keep.rows * W * 4), keep.rows, `${p}.kept`];
        d.push(
          K.gatherRows(scope, `${p}.keep.attn`, { x: attn, index: keep.index, y: attnOut, rows: n, width: W }),
          K.gatherRows(scope, `${p}.keep.x`, { x: a.x, index: keep.index, y: x, rows: n, width: W }),
        );
      }
      d.push(
        K.matmul(scope, `${p}.attn.out_proj`, { x: attnOut, w: b.outProj, bias: b.outProjBias, y: x, M: n, N: W, K: W, accumulate: true, wDtype }),
        K.layerNorm(scope, `${p}.ln_2`, { x, gain: b.ln2[0], shift: b.ln2[1], y: a.h, rows: n, cols: W }),
        K.matmul(scope, `${p}.mlp.c_fc`, { x: a.h, w: b.fc, bias: b.fcBias, y: mlp, M: n, N: hidden, K: W, activation: act, wDtype }),
        K.matmul(scope, `${p}.mlp.c_proj`, { x: mlp, w: b.proj, bias: b.projBias, y: x, M: n, N: W, K: hidden, accumulate: true, wDtype }),
      );
      mark(name, x, n * W * 4);
      result = x;
    });
    return result;
  }

}

async function finishPlan(
  scope: K.Scope, input: GPUBuffer, output: GPUBuffer, outputBytes: number,
  pending: Promise<Dispatch | Dispatch[]>[], checkpoints: Plan['checkpoints'],
): Promise<Plan> {
  // Pipelines compile concurrently here; checkpoint ends count pending entries, so map them to dispatch indices.
  const resolved = await Promise.all(pending);
  const ends: number[] = [];
  const dispatches: Dispatch[] = [];
  for (const r of resolved) {
    dispatches.push(...(Array.isArray(r) ? r : [r]));
    ends.push(dispatches.length);
  }
  return {
    scope, input, output, outputBytes, dispatches,
    checkpoints: checkpoints.map((c) => ({ ...c, end: c.end === 0 ? 0 : ends[c.end - 1] })),
  };
}

