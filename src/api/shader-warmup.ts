/**
 * Compiling the image tower's shaders on a second device while the weights load, on a first run.
 *
 * lavapipe compiles each shader at its first dispatch, one at a time on its queue thread, and Mesa keeps the
 * result on disk for later processes. With that cache empty (a first run on a machine, every run in a fresh
 * CI container) ViT-L/14's first image forward spent ~8 s compiling, after ~1.5 s of weight loading during
 * which the GPU's threads idle. A second device on the same adapter has its own queue thread: running the
 * image forward of the family's kernel twin (two blocks, zero weights) there compiles the same shaders into the
 * same disk cache, alongside the weight upload and the text forward on the main device; the main device then
 * reads them back at its first image dispatch. Measured: bench/README.md, seventh pass.
 */
import type { EmbeddingModel, ModelFamily } from '../families/index.js';
import { KernelPolicy, type KernelFamily } from '../kernels/policy.js';
import type { TensorSource } from '../model/tensor-source.js';
import { trace } from '../platform/trace.js';
import { Gpu } from '../runtime/gpu.js';

export interface WarmupPlan<Config> {
  family: ModelFamily<Config>;
  config: Config;
  imageSize: number;
  kernels: KernelFamily | 'auto' | undefined;
  /** Applies the main policy's kernel choices (tuned shapes) to the helper's, so both compile the same shaders. */
  applyTuning: (policy: KernelPolicy) => void;
  dtype: EmbeddingModel['dtype'];
  activations: 'f32' | 'f16' | undefined;
}

/** Runs the kernel twin's image forward at batch 1 on a device of its own; never throws (a warm-up is optional). */
export async function warmImageShaders<Config>(plan: WarmupPlan<Config>): Promise<void> {
  let helper: Gpu | undefined;
  try {
    helper = await Gpu.create();
    const policy = KernelPolicy.create(helper, plan.kernels);
    plan.applyTuning(policy);
    const config = plan.family.kernelTwin(plan.config);
    const twin = await plan.family.load(policy, config, zeroSource(plan.family.stateDict(config)), {
      dtype: plan.dtype,
      activations: plan.activations,
    });
    try {
      const S = plan.imageSize;
      await twin.encodePixels(new Float32Array(3 * S * S), 1);
    } finally {
      twin.dispose();
    }
    trace('image shaders compiled ahead', `(${helper.pipelineCount} pipelines on a second device)`);
  } catch (e) {
    trace('image shader warm-up failed', `(${(e as Error).message}); the first forward compiles them`);
  } finally {
    helper?.destroy();
  }
}

/** Every tensor of `shapes` as f32 zeros. */
function zeroSource(shapes: Map<string, number[]>): TensorSource {
  const tensors = new Map([...shapes].map(([name, shape]) => [name, { name, dtype: 'F32' as const, shape }]));
  const count = (name: string): number => (shapes.get(name) ?? []).reduce((a, b) => a * b, 1);
  return {
    tensors,
    what: 'zero weights for the shader warm-up',
    readF32: async (name, out) => (out ? out.fill(0) : new Float32Array(count(name))),
    readF16: async (name, out) => (out ? out.fill(0) : new Uint16Array(count(name))),
    close: async () => undefined,
  };
}

/** `model` with its image forwards held until `ready` (the warm-up) settles, so no shader is compiled twice. */
export function afterWarmup(model: EmbeddingModel, ready: Promise<void>): EmbeddingModel {
  const afterReady = async <T>(forward: () => Promise<T>): Promise<T> => {
    await ready;
    return forward();
  };
  return {
    // Fixed at load; memory changes with the plans.
    gpu: model.gpu,
    policy: model.policy,
    dtype: model.dtype,
    activations: model.activations,
    logitScale: model.logitScale,
    get memory() {
      return model.memory;
    },
    maxBatch: (tower) => model.maxBatch(tower),
    encodePixels: (pixels, batch) => afterReady(() => model.encodePixels(pixels, batch)),
    encodeTokens: (ids, batch) => model.encodeTokens(ids, batch),
    dumpPixels: (pixels, batch) => afterReady(() => model.dumpPixels(pixels, batch)),
    dumpTokens: (ids, batch) => model.dumpTokens(ids, batch),
    profilePixels: (pixels, batch) => afterReady(() => model.profilePixels(pixels, batch)),
    profileTokens: (ids, batch) => model.profileTokens(ids, batch),
    visionKernels: (batch) => afterReady(() => model.visionKernels(batch)),
    clearPlans: () => model.clearPlans(),
    dispose: () => model.dispose(),
  };
}
