import { openCheckpoint } from '../io/checkpoint.js';
import { resolveModelDir } from '../io/hub.js';
import { KernelPolicy, type KernelFamily } from '../kernels/policy.js';
import { defaultMatmulVariant, subgroupSizes } from '../kernels/tuning.js';
import { familyOf } from '../families/index.js';
import { platform } from '../platform/index.js';
import { vectorWidthChoice, type VectorWidthChoice } from '../platform/vector-width.js';
import { Gpu } from '../runtime/gpu.js';
import { applyCachedTuning, tuningFilePath } from './tuning-store.js';

/** What `whylesion info` shows: the adapter and what the engine makes of it, and optionally a model's files. */
export interface EngineDescription {
  adapter: Gpu['adapterInfo'];
  features: string[];
  limits: Record<string, number>;
  f16Available: boolean;
  subgroupKernels: boolean;
  subgroupSize: { min: number; max: number } | null;
  /** Only when the engine started Dawn (Node); Deno's and a caller's devices are not ours to configure. */
  cpuVectorWidth: VectorWidthChoice | null;
  kernelFamily: KernelFamily;
  /** `rule`: the built-in matmul choice at M = 257 with f32 X; `halfRule` with f16 X. */
  kernelTuning: { file: string; tunedShapes: number; rule: string; halfRule: string };
  /** The checkpoint's family and its config as the family read it (defaults filled in). */
  model?: { path: string; family: string; config: object; tensors: number };
}

/**
 * Starts WebGPU, describes the adapter and the kernel choices of `kernels` (default $WHYLESION_KERNELS, else
 * 'auto', as loadModel decides), and checks `model`'s files when given (Node, Deno).
 */
export async function describeEngine(
  options: { model?: string; kernels?: KernelFamily | 'auto' } = {},
): Promise<EngineDescription> {
  const gpu = await Gpu.create();
  try {
    const policy = KernelPolicy.create(
      gpu,
      options.kernels ?? (platform.setting('WHYLESION_KERNELS') as KernelFamily | undefined),
    );
    const limits = gpu.limits;
    const description: EngineDescription = {
      adapter: gpu.adapterInfo,
      features: [...gpu.device.features].sort(),
      limits: {
        maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
        maxBufferSize: limits.maxBufferSize,
        maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
      },
      f16Available: gpu.hasF16,
      subgroupKernels: gpu.hasSubgroups,
      subgroupSize: subgroupSizes(gpu) ?? null,
      cpuVectorWidth: vectorWidthChoice() ?? null,
      kernelFamily: policy.family,
      kernelTuning: {
        file: tuningFilePath(),
        tunedShapes: applyCachedTuning(policy),
        rule: defaultMatmulVariant(policy, 257),
        halfRule: defaultMatmulVariant(policy, 257, 'f16'),
      },
    };
    if (options.model) {
      const checkpoint = await openCheckpoint(await resolveModelDir(options.model));
      await checkpoint.source.close();
      description.model = {
        path: checkpoint.weightsPath,
        family: familyOf(checkpoint).name,
        config: checkpoint.config,
        tensors: checkpoint.source.tensors.size,
      };
    }
    return description;
  } finally {
    gpu.destroy();
  }
}
