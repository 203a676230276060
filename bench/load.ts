// npm run bench:load -- [--config ViT-L-14] [--dtype f32|f16]
// Loads a synthetic full-size checkpoint onto the GPU and reports load time and throughput; bench/load.sh wraps
// it in /usr/bin/time -v (peak RSS) beside `cat file > /dev/null` on the same file.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { Gpu } from '../src/runtime/gpu.js';
import { ClipModel } from '../src/model/clip.js';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { flag, machine, simdFlags, syntheticCheckpoint } from './common.js';
import { KernelPolicy } from '../src/kernels/policy.js';

const argv = process.argv.slice(2);
const dtype = flag(argv, 'dtype', 'f32') as 'f32' | 'f16';
const dir = await syntheticCheckpoint(flag(argv, 'config', 'ViT-L-14'), 0, 'f32');
if (argv.includes('--prepare')) process.exit(0);
const bytes = statSync(join(dir, 'open_clip_model.safetensors')).size;
const gpu = await Gpu.create();
const policy = KernelPolicy.create(gpu);
const t0 = performance.now();
const checkpoint = await openCheckpoint(dir);
const model = await ClipModel.load(policy, checkpoint.config, checkpoint.source, { dtype });
await checkpoint.source.close();
await gpu.device.queue.onSubmittedWorkDone();
const seconds = (performance.now() - t0) / 1000;
console.log(
  JSON.stringify({
    date: new Date().toISOString(),
    machine: machine(gpu.adapterInfo),
    cpuFlags: simdFlags().join(' '),
    lpNativeVectorWidth: process.env.LP_NATIVE_VECTOR_WIDTH,
    file: join(dir, 'open_clip_model.safetensors'),
    bytes,
    dtype,
    seconds,
    mbPerSecond: bytes / 1e6 / seconds,
    rssAfterLoadMB: process.memoryUsage().rss / 1e6,
  }),
);
model.dispose();
gpu.destroy();
