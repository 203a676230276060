// npm run bench:peers -- [--rounds 2] [--webgpu-b8-budget 300] [--skip-webgpu] [--model DIR --out NAME]
// Our engine against ONNX Runtime's CPU EP (2 threads) and WebGPU EP (its own Dawn, on the same Vulkan driver)
// in Node, on the same synthetic ViT-L/14 checkpoint and the same inputs, in one run, alternating: image batch 1,
// image batch 8, text (3 prompts). ONNX Runtime runs an ONNX export of reference/clip_reference.py
// (reference/export_onnx.py, torch 1.13's exporter), cached by the checkpoint's identity. Before anything is
// timed every engine's output must agree with ours (cosine ≥ 0.9999 per row). Python runs only to export.
// onnxruntime-node is not a dependency: it is installed on demand into ~/.cache/whylesion/peers with
// --ignore-scripts (its install script only downloads CUDA libraries; the CPU and WebGPU EPs ship in the package).
// Writes bench/results/peers-node.json; scripts/render-tables.mjs turns it into the README's speed table.
import { fork } from 'node:child_process';
import { openSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { ClipModel } from '../src/model/clip.js';
import { KernelPolicy } from '../src/kernels/policy.js';
import { Gpu } from '../src/runtime/gpu.js';
import { loadTokenizer } from '../src/tokenizer/load.js';
import { benchPixels, flag, PROMPTS, simdFlags, syntheticCheckpoint, writeResult } from './common.js';
import { cacheRoot, ensureExport, ensurePackage, loads, lscpuFlags, OPSET } from './peers-cache.js';
import {
  type Agreement,
  checkAgreement,
  describePlacement,
  matmulProviders,
  median,
  parsePlacements,
  type Case,
  CASES,
  type Placement,
  timingTable,
} from './peers-lib.js';
import type { WorkerReply, WorkerRequest } from './peers-ort-worker.js';

/** The onnxruntime-node release this bench is written and checked against. */
const ORT_VERSION = '1.31.1';
const argv = process.argv.slice(2);
const rounds = Number(flag(argv, 'rounds', '2'));
const webgpuB8BudgetS = Number(flag(argv, 'webgpu-b8-budget', '300'));
const skipWebgpu = argv.includes('--skip-webgpu');

// --- inputs: the same as bench:e2e's (deterministic pixels; the model card's three prompts)
const modelArg = flag(argv, 'model', '');
const modelDir = modelArg || (await syntheticCheckpoint('ViT-L-14', 0, 'f32'));
const outName = flag(argv, 'out', 'peers-node');
const checkpoint = await openCheckpoint(modelDir);
const loadStart = loads();
ensurePackage('onnxruntime-node', ORT_VERSION);
const exportDir = ensureExport(modelDir, checkpoint.identity.weights, checkpoint.identity.config);
const S = checkpoint.config.vision.imageSize;
const pixels = benchPixels(8, S);
const context = checkpoint.config.text.contextLength;
const ids = (await loadTokenizer()).tokenize(PROMPTS, context);

// --- our engine, in this process
const gpu = await Gpu.create();
const model = await ClipModel.load(KernelPolicy.create(gpu), checkpoint.config, checkpoint.source, { dtype: 'f32' });
await checkpoint.source.close();
const embedDim = checkpoint.config.embedDim;
const ours = {
  run: async (c: Case): Promise<{ seconds: number; output: Float32Array }> => {
    const started = performance.now();
    const output =
      c.id === 'text'
        ? await model.encodeTokens(ids, c.batch)
        : await model.encodePixels(pixels.subarray(0, c.batch * 3 * S * S), c.batch);
    return { seconds: (performance.now() - started) / 1000, output };
  },
};

// --- ONNX Runtime, in a child (same llvmpipe settings as ours: this process's environment after Gpu.create)
const logPath = join(cacheRoot, `ort-${process.pid}.log`);
const workerPath = join(dirname(fileURLToPath(import.meta.url)), 'peers-ort-worker.js');
const worker = fork(workerPath, [], {
  env: { ...process.env, ORT_PREFIX: cacheRoot },
  stdio: ['ignore', 'inherit', openSync(logPath, 'w'), 'ipc'],
  serialization: 'advanced',
});
let pending: ((reply: WorkerReply) => void) | undefined;
worker.on('message', (reply: WorkerReply) => pending?.(reply));
worker.on('exit', (code) => {
  if (pending) {
    console.error(`the ONNX Runtime worker exited (${code}); its log: ${logPath}`);
    process.exit(1);
  }
});
function ask(request: WorkerRequest): Promise<WorkerReply> {
  return new Promise((resolve, reject) => {
    pending = (reply) => {
      pending = undefined;
      if (reply.type === 'error') reject(new Error(`ONNX Runtime: ${reply.message}`));
      else resolve(reply);
    };
    worker.send(request);
  });
}

interface Peer {
  id: 'ort-cpu' | 'ort-webgpu';
  ep: 'cpu' | 'webgpu';
  label: string;
}
const PEERS: Peer[] = [
  { id: 'ort-cpu', ep: 'cpu', label: 'ONNX Runtime CPU EP (2 threads)' },
  ...(skipWebgpu ? [] : [{ id: 'ort-webgpu' as const, ep: 'webgpu' as const, label: 'ONNX Runtime WebGPU EP' }]),
];
const placements: Record<string, Placement> = {};
const createSeconds: Record<string, number> = {};
for (const peer of PEERS)
  for (const tower of ['image', 'text']) {
    const key = `${peer.id}:${tower}`;
    const reply = await ask({
      type: 'create',
      key,
      ep: peer.ep,
      path: join(exportDir, `${tower}.onnx`),
      threads: cpus().length,
    });
    if (reply.type === 'created') createSeconds[key] = reply.seconds;
    const parsed = parsePlacements(readFileSync(logPath, 'utf8')).at(-1);
    if (parsed) placements[key] = parsed;
    console.error(
      `${key}: session in ${createSeconds[key]?.toFixed(1)} s; ${parsed ? describePlacement(parsed) : '?'}`,
    );
  }
const info = await ask({ type: 'info' });
const ortInfo = info.type === 'info' ? info : undefined;

function peerRun(peer: Peer, c: Case): Promise<{ seconds: number; output: Float32Array }> {
  const request: WorkerRequest =
    c.id === 'text'
      ? {
          type: 'run',
          key: `${peer.id}:text`,
          input: 'tokens',
          dims: [c.batch, context],
          data: BigInt64Array.from(ids, (v) => BigInt(v)),
        }
      : {
          type: 'run',
          key: `${peer.id}:image`,
          input: 'pixels',
          dims: [c.batch, 3, S, S],
          data: pixels.slice(0, c.batch * 3 * S * S),
        };
  return ask(request).then((reply) => {
    if (reply.type !== 'ran') throw new Error(`unexpected reply ${reply.type}`);
    return { seconds: reply.seconds, output: reply.output };
  });
}

const { timings, timing, finish: finishTimings } = timingTable();
const agreements: Agreement[] = [];
/** A disagreement ends the run: its sentence, the worker stopped, exit 1, no result written. */
function gate(check: () => Agreement): Agreement {
  try {
    return check();
  } catch (error) {
    console.error(`bench:peers: ${error instanceof Error ? error.message : String(error)}.`);
    worker.kill();
    rmSync(logPath, { force: true });
    process.exit(1);
  }
}
const progress = (engine: string, c: Case, what: string, s: number) =>
  console.error(`  ${engine} ${c.label} ${what}: ${s.toFixed(2)} s (load ${loadavg()[0]?.toFixed(1)})`);

// 1. Warm-up of every engine and case, which is also the agreement gate: nothing is timed unless all agree.
//    ONNX Runtime WebGPU at batch 8 is decided later (its budget needs the batch-1 time).
const webgpuB8Deferred = (peer: Peer, c: Case) => peer.ep === 'webgpu' && c.id === 'image-b8';
for (const c of CASES) {
  const mine = await ours.run(c);
  timing('whylesion', c).warmupS = mine.seconds;
  progress('whylesion', c, 'warm-up', mine.seconds);
  for (const peer of PEERS) {
    if (webgpuB8Deferred(peer, c)) continue;
    const theirs = await peerRun(peer, c);
    agreements.push(gate(() => checkAgreement(peer.label, c.label, mine.output, theirs.output, embedDim)));
    timing(peer.id, c).warmupS = theirs.seconds;
    progress(peer.id, c, `warm-up, min cosine ${agreements.at(-1)?.minCosine.toFixed(7)}`, theirs.seconds);
  }
}

// 2. Timed rounds, alternating engines within each case.
const reference = new Map<Case['id'], Float32Array>();
for (let round = 0; round < rounds; round++)
  for (const c of CASES) {
    const mine = await ours.run(c);
    reference.set(c.id, mine.output);
    timing('whylesion', c).runsS.push(mine.seconds);
    progress('whylesion', c, `round ${round + 1}`, mine.seconds);
    for (const peer of PEERS) {
      if (webgpuB8Deferred(peer, c)) continue;
      const theirs = await peerRun(peer, c);
      timing(peer.id, c).runsS.push(theirs.seconds);
      progress(peer.id, c, `round ${round + 1}`, theirs.seconds);
    }
  }

// 3. ONNX Runtime WebGPU at batch 8: one run (checked, then counted), only when 8 × its batch-1 time fits the budget.
const webgpu = PEERS.find((p) => p.ep === 'webgpu');
const b8 = CASES.find((c) => c.id === 'image-b8');
if (webgpu && b8) {
  const t = timing(webgpu.id, b8);
  const b1 = median(timing(webgpu.id, CASES[0] as Case).runsS);
  const estimate = 8 * b1;
  if (estimate > webgpuB8BudgetS) {
    t.note = `skipped: 8 × its batch-1 median (${b1.toFixed(1)} s) = ${estimate.toFixed(0)} s exceeds the ${webgpuB8BudgetS} s budget of this run`;
  } else {
    const theirs = await peerRun(webgpu, b8);
    const mine = reference.get('image-b8');
    if (mine) agreements.push(gate(() => checkAgreement(webgpu.label, b8.label, mine, theirs.output, embedDim)));
    t.runsS.push(theirs.seconds);
    t.note = 'one run, no warm-up (its first batch-8 call, pipeline compiles for the new shapes included)';
    progress(webgpu.id, b8, 'single run', theirs.seconds);
  }
  console.error(`  ${webgpu.id} ${b8.label}: ${t.note}`);
}
finishTimings();
const loadEnd = loads();
const exited = new Promise((resolve) => worker.once('exit', resolve));
worker.send({ type: 'exit' } satisfies WorkerRequest);
await exited;
const ortLog = readFileSync(logPath, 'utf8');
rmSync(logPath, { force: true });
model.dispose();
gpu.destroy();

const adapter = gpu.adapterInfo;
const result = {
  kind: 'peers',
  host: 'node',
  date: new Date().toISOString(),
  model: { config: modelArg || 'ViT-L-14', dtype: 'f32', weights: checkpoint.identity.weights, onnxOpset: OPSET },
  machine: {
    cpu: cpus()[0]?.model ?? 'unknown CPU',
    cores: cpus().length,
    node: process.version,
    cpuFlags: simdFlags().join(' '),
    lscpuFlags: lscpuFlags(),
  },
  loadAverage: { start: loadStart, end: loadEnd },
  llvmpipe: { LP_NUM_THREADS: process.env.LP_NUM_THREADS, LP_NATIVE_VECTOR_WIDTH: process.env.LP_NATIVE_VECTOR_WIDTH },
  rounds,
  cases: CASES,
  engines: [
    {
      id: 'whylesion',
      label: 'whylesion (WebGPU)',
      adapter: [adapter.vendor, adapter.architecture, adapter.device, adapter.description].filter(Boolean).join(' / '),
    },
    ...PEERS.map((peer) => ({
      id: peer.id,
      label: peer.label,
      version: ortInfo?.versions.node ?? ORT_VERSION,
      executionProvider: peer.ep,
      sessionCreateS: { image: createSeconds[`${peer.id}:image`], text: createSeconds[`${peer.id}:text`] },
      placement: { image: placements[`${peer.id}:image`], text: placements[`${peer.id}:text`] },
      matmulProviders: [
        ...new Set(
          ['image', 'text'].flatMap((t) => {
            const p = placements[`${peer.id}:${t}`];
            return p ? matmulProviders(p) : [];
          }),
        ),
      ],
      ...(peer.ep === 'webgpu'
        ? {
            // ORT prints no adapter; which Vulkan driver its Dawn loaded is in its process's memory map, and
            // Dawn's lavapipe-specific limit warnings are in its log.
            adapter: `its own Dawn over Vulkan; Vulkan libraries mapped in its process: ${ortInfo?.vulkanLibraries.map((l) => l.replace(/^.*\//, '')).join(', ') || 'none'} (the loader maps every installed ICD; which has a device depends on the machine)`,
            dawnWarnings: [...new Set(ortLog.split('\n').filter((l) => l.startsWith('Warning:')))],
          }
        : {}),
    })),
  ],
  agreement: agreements,
  timings,
};

const label = (id: string) => result.engines.find((e) => e.id === id)?.label ?? id;
console.log(
  `peers (Node ${process.version}): ${result.model.config} f32, ${result.machine.cpu} (${result.machine.cores} cores); whylesion on ${result.engines[0]?.adapter}; ONNX Runtime ${ortInfo?.versions.node}; load average ${loadStart.join(' ')} -> ${loadEnd.join(' ')}`,
);
console.log(`CPU flags (lscpu): ${result.machine.lscpuFlags}`);
console.log('| case | engine | warm-up s | runs s | median s | per image s |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const c of CASES)
  for (const t of timings.filter((x) => x.case === c.id))
    console.log(
      `| ${c.label} | ${label(t.engine)} | ${t.warmupS?.toFixed(2) ?? '–'} | ${t.runsS.map((s) => s.toFixed(2)).join(', ') || '–'} | ${t.medianS?.toFixed(2) ?? '–'} | ${c.id === 'text' || t.medianS === null ? '–' : (t.medianS / c.batch).toFixed(2)} |${t.note ? ` ${t.note}` : ''}`,
    );
for (const e of result.engines)
  if ('placement' in e) console.log(`${e.label}: MatMul/Gemm on ${e.matmulProviders.join(', ')}`);
for (const a of agreements) console.log(`agreement ${a.engine}, ${a.case}: min row cosine ${a.minCosine.toFixed(9)}`);
console.log(`\nwrote ${writeResult(outName, result)}`);
