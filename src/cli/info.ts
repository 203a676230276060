import { describeEngine } from '../api/describe.js';
import type { KernelFamily } from '../kernels/policy.js';
import { parseDtype, parseCommand } from './args.js';

const USAGE = `
Usage: whylesion info [--model DIR|hf-hub:ID] [--dtype f32|f16] [--kernels FAMILY] [--json]

Prints the WebGPU adapter, its limits and features, the kernels the engine would run on it (--kernels auto,
cpu-subgroup, gpu or portable; default $WHYLESION_KERNELS, else auto), and (with --model) the model's config
and weights.`;

export async function infoCommand(argv: string[]): Promise<void> {
  const parsed = parseCommand(
    'info',
    argv,
    { model: { type: 'string' }, dtype: { type: 'string' }, kernels: { type: 'string' }, json: { type: 'boolean' } },
    USAGE,
  );
  if (!parsed) return;
  const { values } = parsed;
  const dtype = parseDtype(values.dtype);
  const kernels = values.kernels as KernelFamily | 'auto' | undefined;
  const info = { ...(await describeEngine({ model: values.model, kernels })), dtype };
  if (values.json) {
    console.log(JSON.stringify(info, null, 2));
    return;
  }
  const a = info.adapter;
  console.log(
    `adapter   ${[a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ') || '(caller-provided device)'}`,
  );
  console.log(`features  ${info.features.join(', ')}`);
  for (const [k, v] of Object.entries(info.limits)) console.log(`limit     ${k} = ${v}`);
  const halves = ' (with f16 activations inside each block; --activations f32 keeps them f32)';
  console.log(
    `dtype     ${dtype}${dtype === 'f16' ? (info.f16Available ? halves : ' (unavailable: no shader-f16)') : ''}`,
  );
  const sizes = info.subgroupSize;
  console.log(
    `subgroups ${sizes ? (sizes.min === sizes.max ? `${sizes.min} lanes` : `${sizes.min}-${sizes.max} lanes`) : 'size not reported'}${info.subgroupKernels ? '' : ' (subgroup kernels off: no usable subgroups)'}`,
  );
  const width = info.cpuVectorWidth;
  if (width)
    console.log(
      `width     ${width.bits ? `${width.bits}-bit` : 'default'} CPU vectors for llvmpipe: ${width.reason}; compiled shaders in ${width.shaderCache ?? "Mesa's default cache folder"}`,
    );
  const tuning = info.kernelTuning;
  console.log(
    `kernels   ${info.kernelFamily} family; matmul ${tuning.rule} by rule at M=257${tuning.halfRule !== tuning.rule ? ` (${tuning.halfRule} with f16 activations)` : ''}; ${tuning.tunedShapes ? `${tuning.tunedShapes} shapes tuned in ${tuning.file}` : `no tuned shapes for this adapter (whylesion tune saves them to ${tuning.file})`}`,
  );
  if (info.model) {
    console.log(`weights   ${info.model.path} (${info.model.tensors} tensors)`);
    console.log(`config    ${info.model.family} ${JSON.stringify(info.model.config)}`);
  }
}
