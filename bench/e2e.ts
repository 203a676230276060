// npm run bench:e2e -- [--config ViT-L-14] [--dtype f32|f16] [--runs 3]
// Whole-tower wall times on a synthesized checkpoint: the engine (cold = first call of the process, pipeline
// compilation included; warm = median of --runs) beside the plain-PyTorch reference on the same checkpoint,
// inputs and machine, in one run: image batch 1, image batch 8 (per image), text 3 prompts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Gpu } from '../src/runtime/gpu.js';
import { writeNpy } from '../src/io/npy.js';
import { applyKernelTuning, tuningFilePath } from '../src/api/tuning-store.js';
import { ClipModel } from '../src/model/clip.js';
import { loadTokenizer } from '../src/tokenizer/load.js';
import { openCheckpoint } from '../src/io/checkpoint.js';
import {
  benchPixels,
  flag,
  machine,
  PROMPTS,
  runReference,
  simdFlags,
  syntheticCheckpoint,
  writeResult,
} from './common.js';
import { KernelPolicy } from '../src/kernels/policy.js';

const argv = process.argv.slice(2);
const config = flag(argv, 'config', 'ViT-L-14');
const dtype = flag(argv, 'dtype', 'f32') as 'f32' | 'f16';
const runs = Number(flag(argv, 'runs', '3'));

const dir = await syntheticCheckpoint(config, 0, 'f32');
const work = mkdtempSync(join(tmpdir(), 'whylesion-e2e-'));
const checkpoint = await openCheckpoint(dir);
const S = checkpoint.config.vision.imageSize;
const pixels = benchPixels(8, S);
writeFileSync(join(work, 'pixels1.npy'), writeNpy([1, 3, S, S], pixels.subarray(0, 3 * S * S)));
writeFileSync(join(work, 'pixels8.npy'), writeNpy([8, 3, S, S], pixels));
const tokenizer = await loadTokenizer();
const ids = tokenizer.tokenize(PROMPTS, 77);
writeFileSync(
  join(work, 'tokens.json'),
  JSON.stringify(Array.from({ length: 3 }, (_, i) => Array.from(ids.subarray(i * 77, (i + 1) * 77)))),
);

const load = [loadavg()[0]!]; // os.loadavg() always has three
console.error('PyTorch reference ...');
const torch1 = runReference([
  '--model',
  dir,
  '--pixels',
  join(work, 'pixels1.npy'),
  '--tokens',
  join(work, 'tokens.json'),
  '--out',
  join(work, 'r1'),
]);
const torch8 = runReference(['--model', dir, '--pixels', join(work, 'pixels8.npy'), '--out', join(work, 'r8')]);

console.error('engine ...');
const gpu = await Gpu.create();
const policy = KernelPolicy.create(gpu);
// As loadModel does: kernel choices saved by `whylesion tune` on this adapter, if any.
const tunedShapes = applyKernelTuning(policy);
console.error(`kernel choices: ${tunedShapes ? `${tunedShapes} shapes from ${tuningFilePath()}` : 'built-in rules'}`);
const model = await ClipModel.load(policy, checkpoint.config, checkpoint.source, { dtype });
await checkpoint.source.close();
async function timed(f: () => Promise<unknown>): Promise<{ cold: number; warm: number }> {
  let t0 = performance.now();
  await f();
  const cold = (performance.now() - t0) / 1000;
  const warm: number[] = [];
  for (let r = 0; r < runs; r++) {
    t0 = performance.now();
    await f();
    warm.push((performance.now() - t0) / 1000);
  }
  return { cold, warm: warm.sort((a, b) => a - b)[Math.floor(runs / 2)]! };
}
const image1 = await timed(() => model.encodePixels(pixels.subarray(0, 3 * S * S), 1));
const text = await timed(() => model.encodeTokens(ids, 3));
const image8 = await timed(() => model.encodePixels(pixels, 8));
load.push(loadavg()[0]!);
model.dispose();
gpu.destroy();
rmSync(work, { recursive: true, force: true });

const rows = [
  { case: 'image, batch 1', engineCold: image1.cold, engine: image1.warm, torch: torch1.image_seconds! },
  {
    case: 'image, batch 8 (per image)',
    engineCold: image8.cold / 8,
    engine: image8.warm / 8,
    torch: torch8.image_seconds! / 8,
  },
  { case: 'text, 3 prompts', engineCold: text.cold, engine: text.warm, torch: torch1.text_seconds! },
];
const result = {
  config,
  dtype,
  activations: model.activations,
  runs,
  machine: machine(gpu.adapterInfo),
  torchThreads: torch1.threads,
  cpus: cpus().length,
  loadAverage: load,
  lpNumThreads: process.env.LP_NUM_THREADS,
  cpuFlags: simdFlags().join(' '),
  lpNativeVectorWidth: process.env.LP_NATIVE_VECTOR_WIDTH,
  tunedShapes,
  date: new Date().toISOString(),
  rows,
};
console.log(
  `e2e: ${config}, ${dtype} weights${model.activations.vision === 'f16' ? ', f16 block activations' : ''}; ${result.machine}; LP_NUM_THREADS=${process.env.LP_NUM_THREADS}; load average ${load.map((l) => l.toFixed(1)).join(' -> ')}`,
);
console.log('| case | engine warm s | engine cold s | PyTorch s | engine / PyTorch |');
console.log('| --- | --- | --- | --- | --- |');
for (const r of rows)
  console.log(
    `| ${r.case} | ${r.engine.toFixed(2)} | ${r.engineCold.toFixed(2)} | ${r.torch.toFixed(2)} | ${(r.engine / r.torch).toFixed(2)} |`,
  );
console.log(`\nwrote ${writeResult(`e2e-${config}-${dtype}`, result)}`);
