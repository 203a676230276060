import { Gpu } from '../gpu/gpu.js';
import { applyCachedTuning, tuningFilePath } from '../io/tuning-store.js';
import { vectorWidthChoice } from '../platform/vector-width.js';
import { defaultMatmulVariant, kernelFamily, subgroupSizes } from '../kernels/tuning.js';
import { parseDtype, parseCommand } from './args.js';
import { resolveModelDir } from '../weights/hub.js';
import { openCheckpoint } from '../weights/checkpoint.js';

const USAGE = `
Usage: whylesion info [--model DIR|hf-hub:ID] [--dtype f32|f16] [--json]

Prints the WebGPU adapter, its limits and features, and (with --model) the model's config and weights.`;

export async function infoCommand(argv: string[]): Promise<void> {
  const parsed = parseCommand('info', argv, { model: { type: 'string' }, dtype: { type: 'string' }, json: { type: 'boolean' } }, USAGE);
  if (!parsed) return;
  const { values } = parsed;
  const dtype = parseDtype(values.dtype);
  const gpu = await Gpu.create();
  try {
    const limits = gpu.limits;
    const info: Record<string, unknown> = {
      adapter: gpu.adapterInfo,
      features: [...gpu.device.features].sort(),
      limits: {
        maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
        maxBufferSize: limits.maxBufferSize,
        maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
      },
      dtype,
      f16Available: gpu.hasF16,
      subgroupKernels: gpu.hasSubgroups,
      subgroupSize: subgroupSizes(gpu) ?? null,
      // Only when the engine started Dawn (Node); Deno's and a caller's devices are not ours to configure.
      cpuVectorWidth: vectorWidthChoice() ?? null,
      kernelFamily: kernelFamily(gpu),
      kernelTuning: { file: tuningFilePath(), tunedShapes: applyCachedTuning(gpu), rule: defaultMatmulVariant(gpu, 257) },
    };
    if (values.model) {
      const checkpoint = await openCheckpoint(await resolveModelDir(values.model));
      await checkpoint.source.close();
      info.model = { path: checkpoint.weightsPath, config: checkpoint.config, tensors: checkpoint.source.tensors.size };
    }
    if (values.json) {
      console.log(JSON.stringify(info, null, 2));
      return;
    }
    const a = gpu.adapterInfo;
    console.log(`adapter   ${[a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ') || '(caller-provided device)'}`);
    console.log(`features  ${(info.features as string[]).join(', ')}`);
    for (const [k, v] of Object.entries(info.limits as Record<string, number>)) console.log(`limit     ${k} = ${v}`);
    console.log(`dtype     ${dtype}${dtype === 'f16' && !gpu.hasF16 ? ' (unavailable: no shader-f16)' : ''}`);
    const sizes = subgroupSizes(gpu);
    console.log(`subgroups ${sizes ? (sizes.min === sizes.max ? `${sizes.min} lanes` : `${sizes.min}-${sizes.max} lanes`) : 'size not reported'}${gpu.hasSubgroups ? '' : ' (subgroup kernels off: no usable subgroups)'}`);
    const width = vectorWidthChoice();
    if (width) console.log(`width     ${width.bits ? `${width.bits}-bit` : 'default'} CPU vectors for llvmpipe: ${width.reason}`);
    const tuning = info.kernelTuning as { file: string; tunedShapes: number; rule: string };
    console.log(`kernels   ${info.kernelFamily} family; matmul ${tuning.rule} by rule at M=257; ${tuning.tunedShapes ? `${tuning.tunedShapes} shapes tuned in ${tuning.file}` : `no tuned shapes for this adapter (whylesion tune saves them to ${tuning.file})`}`);
    if (info.model) {
      const m = info.model as { path: string; config: unknown; tensors: number };
      console.log(`weights   ${m.path} (${m.tensors} tensors)`);
      console.log(`config    ${JSON.stringify(m.config)}`);
    }
  } finally {
    gpu.destroy();
  }
}
