// npm run bench:memory -- [--config ViT-L-14] [--dtype f32|f16] [--batches 1,8,32,64] [--label NAME]
// One process embeds images at each batch size in turn on a synthesized checkpoint and reports, per batch,
// the wall time and the process's peak RSS (Linux VmHWM, reset after loading through /proc/self/clear_refs).
// On a CPU adapter (lavapipe) GPU buffers are host memory, so RSS counts weights and activations alike.
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { Gpu } from '../src/runtime/gpu.js';
import { ClipModel } from '../src/model/clip.js';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { elementCount } from '../src/model/tensor-source.js';
import { benchPixels, flag, machine, simdFlags, syntheticCheckpoint, writeResult } from './common.js';
import { KernelPolicy } from '../src/kernels/policy.js';

const argv = process.argv.slice(2);
const config = flag(argv, 'config', 'ViT-L-14');
const dtype = flag(argv, 'dtype', 'f32') as 'f32' | 'f16';
const batches = flag(argv, 'batches', '1,8,32,64').split(',').map(Number);
const label = flag(argv, 'label', 'engine');
const MB = 2 ** 20;

/** Current and peak resident set (bytes) as the kernel counts them. */
function rss(): { now: number; peak: number } {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)![1]) * 1024;
  return { now: kb('VmRSS'), peak: kb('VmHWM') };
}

/** Starts a new peak: VmHWM drops to the current RSS. */
function resetPeak(): void {
  writeFileSync('/proc/self/clear_refs', '5');
}

const dir = await syntheticCheckpoint(config, 0, 'f32');
const checkpoint = await openCheckpoint(dir);
const S = checkpoint.config.vision.imageSize;
const weightBytes = [...checkpoint.source.tensors.values()].reduce(
  (sum, t) => sum + elementCount(t.shape) * (dtype === 'f16' && t.shape.length === 2 ? 2 : 4),
  0,
);

const beforeGpu = rss().now;
const gpu = await Gpu.create();
const policy = KernelPolicy.create(gpu);
const model = await ClipModel.load(policy, checkpoint.config, checkpoint.source, { dtype });
await checkpoint.source.close();
// Dawn frees the upload staging of the weights a moment after the queue drains: measure the loaded model at rest.
await gpu.device.queue.onSubmittedWorkDone();
await new Promise((resolve) => setTimeout(resolve, 3000));
global.gc?.();
const afterLoad = rss().now;
const perForward = model.maxBatch('image');
console.error(
  `${config} ${dtype}: loaded; RSS ${(afterLoad / MB).toFixed(0)} MB (${((afterLoad - beforeGpu) / MB).toFixed(0)} MB over the process before the GPU); at most ${perForward} images per forward`,
);

// As the model is now: activation bytes the executor holds (older commits have no such report).
const arenaBytes = (): number | undefined => (model as { memory?: { arenaBytes: number } }).memory?.arenaBytes;
resetPeak();
const rows: {
  batch: number;
  seconds: number;
  perImage: number;
  rssPeakMB: number;
  rssAfterMB: number;
  arenaMB?: number;
}[] = [];
for (const batch of batches) {
  global.gc?.();
  // Each batch gets its own array, as a caller's input would be.
  const pixels = benchPixels(batch, S);
  const t0 = performance.now();
  await model.encodePixels(pixels, batch);
  const seconds = (performance.now() - t0) / 1000;
  const { now, peak } = rss();
  const arena = arenaBytes();
  rows.push({
    batch,
    seconds,
    perImage: seconds / batch,
    rssPeakMB: peak / MB,
    rssAfterMB: now / MB,
    arenaMB: arena === undefined ? undefined : arena / MB,
  });
  console.error(`batch ${batch}: ${seconds.toFixed(1)} s, peak RSS ${(peak / MB).toFixed(0)} MB`);
}
const peak = rss().peak;
model.dispose();
gpu.destroy();

// The acceptance bound of issue #15: peak ≤ weights + the largest single forward's activations + 300 MB.
const largestArena = Math.max(...rows.map((r) => r.arenaMB ?? 0)) * MB;
const bound = rows.every((r) => r.arenaMB === undefined) ? undefined : weightBytes + largestArena + 300 * MB;
const result = {
  label,
  config,
  dtype,
  batches,
  imagesPerForward: perForward,
  machine: machine(gpu.adapterInfo),
  cpus: cpus().length,
  cpuFlags: simdFlags().join(' '),
  lpNativeVectorWidth: process.env.LP_NATIVE_VECTOR_WIDTH,
  lpNumThreads: process.env.LP_NUM_THREADS,
  loadAverage: loadavg()[0],
  date: new Date().toISOString(),
  weightMB: weightBytes / MB,
  rssBeforeGpuMB: beforeGpu / MB,
  rssAfterLoadMB: afterLoad / MB,
  rssPeakMB: peak / MB,
  peakOverLoadMB: (peak - afterLoad) / MB,
  boundMB: bound === undefined ? undefined : bound / MB,
  rows,
};
console.log(
  `memory (${label}): ${config}, ${dtype} weights (${result.weightMB.toFixed(0)} MB); ${result.machine}; ${perForward} images per forward at most`,
);
console.log(
  `RSS after load ${result.rssAfterLoadMB.toFixed(0)} MB; peak over all batches ${result.rssPeakMB.toFixed(0)} MB (+${result.peakOverLoadMB.toFixed(0)} MB over the loaded model)`,
);
if (bound !== undefined)
  console.log(
    `bound: weights + largest arena + 300 MB = ${(bound / MB).toFixed(0)} MB; peak ${(peak / MB).toFixed(0)} MB ${peak <= bound ? 'within' : 'OVER'}`,
  );
console.log('| batch | s | s per image | peak RSS MB (since load) | RSS after MB | activation arena MB |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const r of rows) {
  console.log(
    `| ${r.batch} | ${r.seconds.toFixed(1)} | ${r.perImage.toFixed(2)} | ${r.rssPeakMB.toFixed(0)} | ${r.rssAfterMB.toFixed(0)} | ${r.arenaMB === undefined ? '-' : r.arenaMB.toFixed(0)} |`,
  );
}
console.log(`\nwrote ${writeResult(`memory-${config}-${dtype}-${label}`, result)}`);
