// node dist/bench/gpu-check.js --out OUT_DIR [--config ViT-L-14] [--batches 1,8] [--runs 3] [--tune-runs 3] [--torch-runs 3]
// (run through bench/gpu-check.sh, which picks the Python that has torch). One prepared check for a machine
// with a WebGPU adapter and no internet: synthesizes the model, checks the engine against the plain-PyTorch
// reference (CUDA when torch sees a GPU), times both, runs the kernel tuner, and writes
// OUT_DIR/gpu-check.json after every stage, so a failure or a timeout still leaves what was measured.
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { WhyLesionModel } from '../src/api/model.js';
import { vectorWidthChoice } from '../src/platform/vector-width.js';
import { Gpu } from '../src/runtime/gpu.js';
import { readNpy, writeNpy } from '../src/io/npy.js';
import { tuningFilePath } from '../src/api/tuning-store.js';
import { ClipModel } from '../src/model/clip.js';
import { openClip } from '../src/families/index.js';
import { adapterKind, defaultMatmulVariant, subgroupSizes } from '../src/kernels/tuning.js';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { benchPixels, flag, machine, PROMPTS, PYTHON, runReference, simdFlags, syntheticCheckpoint } from './common.js';
import { KernelPolicy } from '../src/kernels/policy.js';

const argv = process.argv.slice(2);
const outDir = flag(argv, 'out', '');
if (!outDir)
  throw new Error(
    'usage: gpu-check.js --out OUT_DIR [--config ViT-L-14] [--batches 1,8] [--runs 3] [--tune-runs 3] [--torch-runs 3]',
  );
const config = flag(argv, 'config', 'ViT-L-14');
const runs = Number(flag(argv, 'runs', '3'));
const tuneRuns = Number(flag(argv, 'tune-runs', '3'));
const torchRuns = Number(flag(argv, 'torch-runs', '3'));
// Image batches timed, checked and tuned (1 and 8 unless a slow adapter needs fewer).
const batches = flag(argv, 'batches', '1,8')
  .split(',')
  .map(Number)
  .filter((b) => b === 1 || b === 8);
if (batches.length === 0) throw new Error('--batches takes 1, 8 or 1,8');
const maxBatch = Math.max(...batches);
const started = performance.now();

mkdirSync(outDir, { recursive: true });
// The tuner saves its choices here, not in the user's cache.
process.env.WHYLESION_TUNING_FILE = join(outDir, 'kernel-tuning.json');

const report: Record<string, unknown> = {
  config,
  batches,
  date: new Date().toISOString(),
  stages: {} as Record<string, number>,
};
function save(): void {
  report.totalSeconds = (performance.now() - started) / 1000;
  const path = join(outDir, 'gpu-check.json');
  writeFileSync(`${path}.tmp`, `${JSON.stringify(report, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
}
async function stage<T>(name: string, f: () => Promise<T>): Promise<T> {
  console.error(`gpu-check: ${name} ...`);
  const t0 = performance.now();
  try {
    return await f();
  } finally {
    (report.stages as Record<string, number>)[name] = (performance.now() - t0) / 1000;
    save();
  }
}

/** Per row: cosine to the reference, and the largest difference of the normalized rows. */
function compare(got: Float32Array, want: Float32Array, E: number): { minCosine: number; maxAbsNormalized: number } {
  let minCosine = 1,
    maxAbsNormalized = 0;
  for (let r = 0; r < want.length / E; r++) {
    const a = got.subarray(r * E, (r + 1) * E),
      b = want.subarray(r * E, (r + 1) * E);
    let dot = 0,
      na = 0,
      nb = 0;
    for (let i = 0; i < E; i++) {
      dot += a[i]! * b[i]!;
      na += a[i]! * a[i]!;
      nb += b[i]! * b[i]!;
    }
    na = Math.sqrt(na);
    nb = Math.sqrt(nb);
    minCosine = Math.min(minCosine, dot / (na * nb));
    for (let i = 0; i < E; i++) maxAbsNormalized = Math.max(maxAbsNormalized, Math.abs(a[i]! / na - b[i]! / nb));
  }
  return { minCosine, maxAbsNormalized };
}

/** Cold (first call) and median warm wall seconds of f, and its last result. */
async function timed<T>(f: () => Promise<T>): Promise<{ cold: number; warm: number; result: T }> {
  let t0 = performance.now();
  let result = await f();
  const cold = (performance.now() - t0) / 1000;
  const warm: number[] = [];
  for (let r = 0; r < runs; r++) {
    t0 = performance.now();
    result = await f();
    warm.push((performance.now() - t0) / 1000);
  }
  return { cold, warm: warm.sort((a, b) => a - b)[Math.floor(warm.length / 2)]!, result };
}

const gpu = await Gpu.create();
const policy = KernelPolicy.create(gpu);
const limits = gpu.limits;
report.adapter = {
  ...gpu.adapterInfo,
  kind: adapterKind(gpu),
  subgroupSize: subgroupSizes(gpu) ?? null,
  subgroupKernels: gpu.hasSubgroups,
  llvmpipeVectorWidth: vectorWidthChoice() ?? null,
};
report.features = [...gpu.device.features].sort();
report.limits = Object.fromEntries(
  [
    'maxStorageBufferBindingSize',
    'maxBufferSize',
    'maxComputeWorkgroupStorageSize',
    'maxComputeInvocationsPerWorkgroup',
    'maxComputeWorkgroupSizeX',
    'maxComputeWorkgroupsPerDimension',
    'maxStorageBuffersPerShaderStage',
  ].map((k) => [k, (limits as unknown as Record<string, number>)[k]]),
);
report.machine = {
  description: machine(gpu.adapterInfo),
  cpus: cpus().length,
  cpuFlags: simdFlags(),
  loadAverage: loadavg()[0],
  node: process.version,
  lpNumThreads: process.env.LP_NUM_THREADS ?? null,
};
report.kernelRule = {
  matmulAtM257: defaultMatmulVariant(policy, 257),
  matmulAtM2056: defaultMatmulVariant(policy, 2056),
};
save();

const dir = await stage('synthesize', () => syntheticCheckpoint(config, 0, 'f32'));
const work = mkdtempSync(join(tmpdir(), 'whylesion-gpu-check-'));
const checkpoint = await openCheckpoint(dir);
await checkpoint.source.close();
const S = checkpoint.config.vision.imageSize,
  E = checkpoint.config.embedDim,
  imageSize = 3 * S * S;
const pixels = benchPixels(maxBatch, S);
writeFileSync(join(work, 'pixels1.npy'), writeNpy([1, 3, S, S], pixels.subarray(0, imageSize)));
writeFileSync(join(work, 'pixelsMax.npy'), writeNpy([maxBatch, 3, S, S], pixels));

// PyTorch: embeddings for the parity check and its timings, fp32 (TF32 off) and, on CUDA, autocast fp16.
let reference: { image: Float32Array; text: Float32Array } | undefined;
let ids: Int32Array | undefined;
try {
  await stage('pytorch', async () => {
    const tokenizer = await (await import('../src/tokenizer/load.js')).loadTokenizer();
    ids = tokenizer.tokenize(PROMPTS, 77);
    writeFileSync(
      join(work, 'tokens.json'),
      JSON.stringify(Array.from({ length: PROMPTS.length }, (_, i) => Array.from(ids!.subarray(i * 77, (i + 1) * 77)))),
    );
    const common = ['--model', dir, '--device', 'auto', '--autocast-fp16', '--timing-runs', String(torchRuns)];
    const t8 = runReference([
      ...common,
      '--pixels',
      join(work, 'pixelsMax.npy'),
      '--tokens',
      join(work, 'tokens.json'),
      '--out',
      join(work, 'r8'),
    ]);
    const t1 =
      maxBatch === 1 ? t8 : runReference([...common, '--pixels', join(work, 'pixels1.npy'), '--out', join(work, 'r1')]);
    const has8 = batches.includes(8),
      has1 = batches.includes(1);
    const read = (name: string) => readNpy(readFileSync(join(work, 'r8', `${name}.npy`))).data as Float32Array;
    reference = { image: read('image_embeddings_raw'), text: read('text_embeddings_raw') };
    report.pytorch = {
      python: PYTHON,
      device: t8.device,
      torch: t8.torch,
      threads: t8.threads,
      runs: torchRuns,
      fp32: {
        imageBatch1: has1 ? t1.image_seconds : undefined,
        imageBatch8PerImage: has8 ? t8.image_seconds! / 8 : undefined,
        text3Prompts: t8.text_seconds,
      },
      autocastFp16:
        t8.image_seconds_autocast_fp16 === undefined
          ? 'CUDA only (CPU autocast has no float16)'
          : {
              imageBatch1: has1 ? t1.image_seconds_autocast_fp16 : undefined,
              imageBatch8PerImage: has8 ? t8.image_seconds_autocast_fp16 / 8 : undefined,
              text3Prompts: t8.text_seconds_autocast_fp16,
            },
    };
  });
} catch (e) {
  report.pytorch = {
    error: `the PyTorch reference did not run (${(e as Error).message.split('\n')[0]}); parity and PyTorch timings are missing`,
  };
  save();
}
if (!ids) ids = (await (await import('../src/tokenizer/load.js')).loadTokenizer()).tokenize(PROMPTS, 77);

const engine: Record<string, unknown> = {};
const parity: Record<string, unknown> = {};
report.engine = engine;
report.parity = reference ? parity : 'not run: no PyTorch reference';
for (const dtype of ['f32', 'f16'] as const) {
  if (dtype === 'f16' && !gpu.hasF16) {
    engine.f16 = 'skipped: the adapter has no shader-f16';
    continue;
  }
  await stage(`engine ${dtype}`, async () => {
    const ckpt = await openCheckpoint(dir);
    const t0 = performance.now();
    const model = await ClipModel.load(policy, ckpt.config, ckpt.source, { dtype });
    await ckpt.source.close();
    const loadSeconds = (performance.now() - t0) / 1000;
    try {
      const image1 = batches.includes(1)
        ? await timed(() => model.encodePixels(pixels.subarray(0, imageSize), 1))
        : undefined;
      const image8 = batches.includes(8) ? await timed(() => model.encodePixels(pixels, 8)) : undefined;
      const text = await timed(() => model.encodeTokens(ids!, PROMPTS.length));
      engine[dtype] = {
        loadSeconds,
        runs,
        imageBatch1: image1 && { warm: image1.warm, cold: image1.cold },
        imageBatch8PerImage: image8 && { warm: image8.warm / 8, cold: image8.cold / 8 },
        text3Prompts: { warm: text.warm, cold: text.cold },
      };
      if (reference) {
        parity[dtype] = {
          imageBatch1: image1 && compare(image1.result, reference.image.subarray(0, E), E),
          imageBatch8: image8 && compare(image8.result, reference.image, E),
          text: compare(text.result, reference.text, E),
        };
      }
      save();
      if (dtype === 'f32') {
        // The tuner on the f32 model: does the built-in rule pick the fastest kernel the tuner finds?
        await stage('tune', async () => {
          const api = await WhyLesionModel.create(
            model,
            openClip.inputs(ckpt.config),
            openClip.preprocessing(ckpt.config),
            gpu,
            false,
            undefined,
            false,
            undefined,
            {
              weights: 'unhashed',
              config: 'unhashed',
              source: 'gpu-check',
            },
          );
          const { results, file } = await api.tune({ batches, runs: tuneRuns });
          report.tune = {
            file: file ?? tuningFilePath(),
            runs: tuneRuns,
            shapes: results.map((r) => {
              const rule = defaultMatmulVariant(policy, r.shape.M);
              const timedOk = r.candidates.filter((c) => c.ms !== undefined).sort((a, b) => a.ms! - b.ms!);
              const ruleMs = r.candidates.find((c) => c.variant === rule)?.ms;
              return {
                ...r.shape,
                rule,
                choice: r.choice,
                fastest: timedOk[0]?.variant,
                ruleIsFastest: timedOk[0]?.variant === rule,
                ruleVsFastest: ruleMs && timedOk[0] ? ruleMs / timedOk[0].ms! : null,
                ms: Object.fromEntries(r.candidates.map((c) => [c.variant, c.ms ?? c.error])),
              };
            }),
          };
          if (results.some((r) => r.choice && r.choice !== defaultMatmulVariant(policy, r.shape.M))) {
            // Some shape chose another kernel: the towers again with the tuned choices.
            const tuned1 = batches.includes(1)
              ? await timed(() => model.encodePixels(pixels.subarray(0, imageSize), 1))
              : undefined;
            const tuned8 = batches.includes(8) ? await timed(() => model.encodePixels(pixels, 8)) : undefined;
            (report.tune as Record<string, unknown>).engineTunedF32 = {
              imageBatch1: tuned1?.warm,
              imageBatch8PerImage: tuned8 && tuned8.warm / 8,
            };
          }
        });
      }
    } finally {
      model.dispose();
    }
  });
}

const pt = report.pytorch as { fp32?: Record<string, number> } | undefined;
if (pt?.fp32) {
  report.ratios = Object.fromEntries(
    (['f32', 'f16'] as const)
      .filter((d) => typeof engine[d] === 'object')
      .map((d) => {
        const e = engine[d] as Record<string, { warm: number }>;
        return [
          `engine ${d} / pytorch fp32`,
          Object.fromEntries(
            ['imageBatch1', 'imageBatch8PerImage', 'text3Prompts']
              .filter((k) => e[k] && pt.fp32![k])
              .map((k) => [k, e[k]!.warm / pt.fp32![k]!]),
          ),
        ];
      }),
  );
}
gpu.destroy();
rmSync(work, { recursive: true, force: true });
save();
console.log(
  JSON.stringify(
    {
      adapter: report.adapter,
      parity: report.parity,
      engine: report.engine,
      pytorch: report.pytorch,
      ratios: report.ratios,
    },
    null,
    2,
  ),
);
console.error(
  `gpu-check: wrote ${join(outDir, 'gpu-check.json')} in ${((performance.now() - started) / 1000).toFixed(0)} s`,
);
