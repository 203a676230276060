// Kernel benchmark: the matmul ladder (each version checked against the CPU reference) next to
// OpenBLAS through numpy on the same shapes in the same run, plus layernorm and attention (the portable
// kernels next to what the library picks).
//   npm run bench:kernels [-- --json] [-- --only=v3,v4] [-- --only=other]  (other: layernorm/attention only)
// Writes bench/results/kernels-<date>.json (kernels-<date>-lp<N>.json under LP_NUM_THREADS=N). LP_NUM_THREADS (llvmpipe's thread count) must be set in
// the environment before the process starts; it is printed with the results.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { Gpu, type Dispatch } from '../src/runtime/gpu.js';
import * as K from '../src/kernels/index.js';
import { ATTENTION_SPECS } from '../src/kernels/attention/index.js';
import { attentionRef } from '../src/kernels/attention/reference.js';
import { LAYERNORM_SPECS } from '../src/kernels/layernorm/index.js';
import { layerNormRef } from '../src/kernels/layernorm/reference.js';
import { matmulRef } from '../src/kernels/matmul/reference.js';
import {
  MATMUL_SPECS,
  matmulLaunch,
  packedMatmulLaunch,
  scalarMatmulLaunch,
  type MatmulLaunch,
} from '../src/kernels/matmul/spec.js';
import { KernelPolicy } from '../src/kernels/policy.js';
import { shaderLabel } from '../src/kernels/shader.js';
import { subgroupsOf16 } from '../src/kernels/tuning.js';
import { f16BitsToF32, f32ToF16Bits } from '../src/io/tensor-source.js';
import { simdFlags } from './common.js';

interface Result {
  kernel: string;
  shape: string;
  ms: number;
  coldMs?: number;
  gflops?: number;
  gbps?: number;
  error?: number;
  cpuMs?: number;
  gflopsPerCpuS?: number;
}

/**
 * One rung of the ladder: a matmul launch (kernel, defines, tile) dispatched directly, or `library`: what
 * matmul() runs on weights uploaded as the model uploads them. What it needs is read from the launch.
 */
interface MatmulVersion {
  name: string;
  what: string;
  run: MatmulLaunch | { library: 'f32' | 'f16' };
  /** Skips shapes whose flop count would make this version take too long. */
  maxGflop?: number;
}

/** X, Y, and W[N, K] as f32 and as f16 bits, on the GPU and on the host (for packing). */
interface MatmulBuffers {
  x: GPUBuffer;
  w: GPUBuffer;
  w16: GPUBuffer;
  wHost: Float32Array;
  w16Host: Uint16Array;
  y: GPUBuffer;
}

const isLibrary = (run: MatmulVersion['run']): run is { library: 'f32' | 'f16' } => 'library' in run;
/** Reads f16 weights (checked against the reference on the f16-rounded weights). */
const readsF16 = (v: MatmulVersion) =>
  isLibrary(v.run)
    ? v.run.library === 'f16'
    : v.run.spec === MATMUL_SPECS.matmul_packed || v.run.defines.W_TYPE === 'f16';
/** The kernel and defines a rung runs, as pipelines are labelled. */
const rungKernel = (v: MatmulVersion) =>
  isLibrary(v.run) ? `matmul(), ${v.run.library} weights` : shaderLabel(v.run.spec.shader, v.run.defines);

/** Whether this device runs a rung: subgroup kernels need subgroups, 16-lane ones exactly 16 lanes. */
function runsOn(policy: KernelPolicy, v: MatmulVersion): boolean {
  const gpu = policy.gpu;
  if (readsF16(v) && !gpu.hasF16) return false;
  if (isLibrary(v.run)) return true;
  const subgroups = v.run.spec === MATMUL_SPECS.matmul_subgroup || v.run.spec === MATMUL_SPECS.matmul_packed;
  if (subgroups && !gpu.device.features.has('subgroups' as GPUFeatureName)) return false;
  return v.run.defines.LANES !== 16 || subgroupsOf16(policy);
}

/** A rung's dispatch (no bias, no activation): directly through dispatchMatmul, or through matmul(). */
async function makeRung(scope: K.Scope, v: MatmulVersion, b: MatmulBuffers, M: number, N: number, Kd: number) {
  if (isLibrary(v.run)) {
    const wType = v.run.library;
    const w = K.uploadMatmulWeights(scope, 'w', wType === 'f16' ? b.w16Host : b.wHost, N, Kd);
    return K.matmul(scope, 'matmul', { x: b.x, w, y: b.y, M, N, K: Kd, wDtype: wType });
  }
  if (v.run.spec === MATMUL_SPECS.matmul_packed) throw new Error(`${v.name}: packed weights run through matmul()`);
  const w = v.run.defines.W_TYPE === 'f16' ? b.w16 : b.w;
  return K.dispatchMatmul(scope, v.run, v.name, { x: b.x, w, y: b.y }, { M, N, K: Kd, flags: 0 });
}

const subgroupTile = (rows: number, cols: number, wType: 'f32' | 'f16' = 'f32', lanes: 8 | 16 = 8) =>
  matmulLaunch(lanes === 8 ? `subgroup-${rows}x${cols}` : `subgroup16-${rows}x${cols}`, wType);

const VERSIONS: MatmulVersion[] = [
  { name: 'v1', what: 'naive: one output per invocation, scalar loads', maxGflop: 2, run: scalarMatmulLaunch('f32') },
  { name: 'v2', what: '4×4 block per invocation, vec4 loads, workgroup 8×8', run: matmulLaunch('block', 'f32') },
  {
    name: 'v3',
    what: 'one subgroup of 8 per workgroup, X rows shared by subgroupBroadcast, 8×8 tile',
    run: subgroupTile(1, 1),
  },
  { name: 'v4', what: 'v3 register-blocked to a 24×24 tile (72 accumulators per lane)', run: subgroupTile(3, 3) },
  { name: 'v5', what: 'v3 register-blocked to a 32×24 tile (96 accumulators per lane)', run: subgroupTile(4, 3) },
  {
    name: 'v7',
    what: 'v3 with 16 lanes (llvmpipe at 512 bits), 16×32 tile (32 accumulators per lane; the rule there)',
    run: subgroupTile(1, 2, 'f32', 16),
  },
  { name: 'v7d', what: 'v7 at 16×48 (48 accumulators per lane)', run: subgroupTile(1, 3, 'f32', 16) },
  { name: 'v7b', what: 'v7 at 32×32 (64 accumulators per lane)', run: subgroupTile(2, 2, 'f32', 16) },
  { name: 'v7c', what: 'v7 at 32×48 (96 accumulators per lane)', run: subgroupTile(2, 3, 'f32', 16) },
  { name: 'v4h', what: 'v4 with f16 weights (vec4<f16> loads)', run: subgroupTile(3, 3, 'f16') },
  {
    name: 'v6',
    what: `v4h with W packed at upload as [N/24][K/4][24], read as u32 pairs (${packedMatmulLaunch(3).spec.shader}; what matmul() runs for f16 weights)`,
    run: { library: 'f16' },
  },
  {
    name: 'gpu',
    what: 'GPU-style workgroup-memory tiling: 64×64 tile, 256 invocations, 4×4 each, 16 of K per barrier (an autotuner candidate for real GPUs)',
    run: matmulLaunch('tiled', 'f32'),
  },
  {
    name: 'lib',
    what: 'what matmul() in src/kernels picks on this device, weights uploaded as the model does',
    run: { library: 'f32' },
  },
];

// ViT-L/14 at 224 px: 257 tokens, width 1024, MLP 4096; the last is a batch of 8 images.
const SHAPES: [number, number, number][] = [
  [257, 1024, 3072],
  [257, 1024, 1024],
  [257, 1024, 4096],
  [257, 4096, 1024],
  [2056, 1024, 4096],
];
const shapeName = (M: number, Kd: number, N: number) => `M=${M} K=${Kd} N=${N}`;

/** Rows checked against the CPU reference: both ends and a few inside (all rows of small M). */
function checkedRows(M: number): number[] {
  if (M <= 16) return Array.from({ length: M }, (_, i) => i);
  return [...new Set([0, 1, 7, 8, 23, 24, 31, Math.floor(M / 2), M - 9, M - 2, M - 1])].filter((r) => r < M);
}

function randomArray(n: number, seed: number, scale: number): Float32Array {
  let s = seed >>> 0;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = ((s >>> 8) / 16777216 - 0.5) * scale;
  }
  return a;
}

/**
 * Median wall ms of up to 9 runs, and the median CPU ms this process spent on them (llvmpipe's threads
 * run in it): CPU time moves much less than wall time when other processes load the machine.
 */
async function timeRuns(
  gpu: Gpu,
  dispatches: Dispatch[],
  budgetMs: number,
  coldMs: number,
): Promise<{ ms: number; cpuMs: number }> {
  const runs = Math.max(1, Math.min(9, Math.floor(budgetMs / Math.max(coldMs, 1))));
  const times: number[] = [],
    cpu: number[] = [];
  for (let i = 0; i < runs + 1; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await gpu.run('bench', dispatches);
    await gpu.device.queue.onSubmittedWorkDone();
    const used = process.cpuUsage(c0);
    if (i > 0) {
      // the first run is the warm-up
      times.push(performance.now() - t0);
      cpu.push((used.user + used.system) / 1000);
    }
  }
  const median = (a: number[]): number => {
    const m = a.sort((p, q) => p - q)[Math.floor(a.length / 2)];
    if (m === undefined) throw new Error('median of no timings');
    return m;
  };
  return { ms: median(times), cpuMs: median(cpu) };
}

async function timeIt(gpu: Gpu, dispatches: Dispatch[], budgetMs: number, coldMs: number): Promise<number> {
  return (await timeRuns(gpu, dispatches, budgetMs, coldMs)).ms;
}

function numpyTimes(shapes: [number, number, number][]): { blas: string; ms: number[] } {
  const script = `
import json, sys, time, numpy as np
shapes = json.loads(sys.argv[1])
out = []
for M, K, N in shapes:
    x = np.random.rand(M, K).astype(np.float32); w = np.random.rand(N, K).astype(np.float32)
    x @ w.T
    ts = []
    for _ in range(7):
        t = time.perf_counter(); x @ w.T; ts.append(time.perf_counter() - t)
    out.append(sorted(ts)[3] * 1e3)
libs = sorted({l.split()[-1] for l in open('/proc/self/maps') if 'blas' in l.lower()})
print(json.dumps({'blas': ' '.join(libs), 'ms': out}))`;
  return JSON.parse(execFileSync('/usr/bin/python3', ['-c', script, JSON.stringify(shapes)], { encoding: 'utf8' }));
}

/**
 * Layernorm and attention on the ViT-L/14 (width 1024, 16 heads of 64, 257 tokens, batch 1 and 8) and
 * text (width 768, 12 heads, 77 tokens, causal) shapes: 'portable' is the kernel without subgroups
 * (layernorm.wgsl, attention.wgsl) dispatched directly, 'lib' what layerNorm()/attention() pick here.
 */
async function otherKernels(policy: KernelPolicy, log: (...a: unknown[]) => void): Promise<Result[]> {
  const gpu = policy.gpu;
  log('\nother kernels                                  cold ms    warm ms   GFLOP/s    GB/s   rel.err');
  const results: Result[] = [];
  const scope = new K.Scope(policy);
  // The portable kernels dispatched directly (the library picks another on llvmpipe), laid out by their specs.
  const cases: {
    kernel: string;
    shape: string;
    out: GPUBuffer;
    n: number;
    want: () => Float32Array;
    make: () => Promise<Dispatch>;
  }[] = [];
  for (const [rows, cols] of [
    [257, 1024],
    [2056, 1024],
    [77, 768],
  ] as [number, number][]) {
    const x = randomArray(rows * cols, rows + cols, 2).map((v) => v + 3),
      gain = randomArray(cols, 8, 0.2).map((v) => v + 1),
      shift = randomArray(cols, 9, 0.2);
    const a = {
      x: scope.storage('x', x),
      gain: scope.storage('g', gain),
      shift: scope.storage('s', shift),
      y: scope.storage('y', rows * cols * 4),
      rows,
      cols,
    };
    let want: Float32Array | undefined;
    const base = {
      shape: `${rows}×${cols}`,
      out: a.y,
      n: rows * cols,
      want: () => (want ??= layerNormRef(x, gain, shift, rows, cols)),
    };
    cases.push({
      ...base,
      kernel: 'layernorm.portable',
      make: () =>
        K.dispatchKernel(
          scope,
          LAYERNORM_SPECS.layernorm,
          'layernorm.portable',
          a,
          { rows, cols, in_row_stride: 1, eps: 1e-5 },
          { Y_TYPE: 'f32' },
          [rows, 1, 1],
          { bytes: 8 * rows * cols },
        ),
    });
    cases.push({ ...base, kernel: 'layernorm.lib', make: () => K.layerNorm(scope, 'ln', a) });
  }
  for (const [B, T, H, D, causal] of [
    [1, 257, 16, 64, false],
    [8, 257, 16, 64, false],
    [1, 77, 12, 64, true],
  ] as const) {
    const qkv = randomArray(B * T * 3 * H * D, B + T, 2);
    const a = {
      qkv: scope.storage('qkv', qkv),
      out: scope.storage('o', B * T * H * D * 4),
      batch: B,
      seq: T,
      heads: H,
      headDim: D,
      causal,
    };
    let want: Float32Array | undefined;
    const base = {
      shape: `B=${B} ${H} heads × ${T} × ${D}${causal ? ' causal' : ''}`,
      out: a.out,
      n: B * T * H * D,
      want: () => (want ??= attentionRef(qkv, B, T, H, D, causal)),
    };
    const pairs = causal ? (T * (T + 1)) / 2 : T * T;
    cases.push({
      ...base,
      kernel: 'attention.portable',
      make: () =>
        K.dispatchKernel(
          scope,
          ATTENTION_SPECS.attention,
          'attention.portable',
          a,
          { T, W: H * D, causal: causal ? 1 : 0, scale: 1 / Math.sqrt(D) },
          { HEAD_DIM: D, IO_TYPE: 'f32' },
          [Math.ceil(T / 64), H, B],
          { flops: 4 * B * H * pairs * D },
        ),
    });
    cases.push({ ...base, kernel: 'attention.lib', make: () => K.attention(scope, 'attn', a) });
  }
  for (const c of cases) {
    const t0 = performance.now();
    const d = await c.make();
    const [bytes] = await gpu.run(c.kernel, [d], [{ buffer: c.out, bytes: c.n * 4 }]);
    if (bytes === undefined) throw new Error('missing bytes');
    const coldMs = performance.now() - t0;
    const got = new Float32Array(bytes),
      want = c.want();
    let diff = 0,
      mag = 0;
    want.forEach((ref, i) => {
      diff = Math.max(diff, Math.abs(got[i]! - ref));
      mag = Math.max(mag, Math.abs(ref));
    });
    const ms = await timeIt(gpu, [d], 2000, coldMs);
    const r: Result = { kernel: c.kernel, shape: c.shape, ms, coldMs, error: diff / mag };
    if (d.flops) r.gflops = d.flops / ms / 1e6;
    if (d.bytes) r.gbps = d.bytes / ms / 1e6;
    results.push(r);
    const name = `${c.kernel} ${c.shape}${c.kernel.endsWith('lib') ? ` (${d.kernel})` : ''}`;
    log(
      `  ${name.padEnd(44)} ${coldMs.toFixed(1).padStart(10)} ${ms.toFixed(2).padStart(10)} ${(r.gflops?.toFixed(1) ?? '-').padStart(9)} ${(r.gbps?.toFixed(2) ?? '-').padStart(7)}   ${r.error!.toExponential(1)}${r.error! > 1e-5 ? '  WRONG' : ''}`,
    );
  }
  scope.destroy();
  return results;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const only = args
    .find((a) => a.startsWith('--only='))
    ?.slice('--only='.length)
    .split(',');
  const log = json ? (..._: unknown[]) => {} : console.log;
  const started = performance.now();

  const gpu = await Gpu.create();
  const policy = KernelPolicy.create(gpu);
  const hasSubgroups = gpu.device.features.has('subgroups' as GPUFeatureName);
  const versions = VERSIONS.filter((v) => runsOn(policy, v) && (!only || only.includes(v.name)));
  const blas = versions.length ? numpyTimes(SHAPES) : { blas: '(not run)', ms: [] };
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '?';
  log(
    `adapter: ${gpu.adapterInfo.description || gpu.adapterInfo.device} (${gpu.adapterInfo.vendor} ${gpu.adapterInfo.device}), subgroups: ${hasSubgroups}`,
  );
  log(
    `CPU: ${cpu} (${os.cpus().length} cores); LP_NUM_THREADS=${process.env.LP_NUM_THREADS ?? '(unset)'}; LP_NATIVE_VECTOR_WIDTH=${process.env.LP_NATIVE_VECTOR_WIDTH ?? '(unset)'}; numpy BLAS: ${blas.blas}`,
  );
  // Other processes on the machine skew every number: the load average says how busy it was.
  log(
    `load average before: ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  if (versions.length) log('\nrungs:');
  for (const v of versions) log(`  ${v.name.padEnd(5)} ${rungKernel(v)}: ${v.what}`);

  const results: Result[] = [];
  for (const [si, [M, Kd, N]] of (versions.length ? SHAPES : []).entries()) {
    const shape = shapeName(M, Kd, N);
    const flop = 2 * M * N * Kd;
    const blasMs = blas.ms[si]!;
    log(`\n${shape}: OpenBLAS ${blasMs.toFixed(2)} ms, ${(flop / blasMs / 1e6).toFixed(1)} GFLOP/s`);
    log('  version       cold ms    warm ms   GFLOP/s  % BLAS  GFLOP/cpu-s   rel.err');
    results.push({ kernel: 'openblas', shape, ms: blasMs, gflops: flop / blasMs / 1e6 });
    const x = randomArray(M * Kd, si + 1, 2),
      w = randomArray(N * Kd, si + 100, 2 / Math.sqrt(Kd));
    const rows = checkedRows(M);
    const w16Host = new Uint16Array(w.length),
      w16 = new Float32Array(w.length);
    f32ToF16Bits(w, w16Host);
    f16BitsToF32(w16Host, w16);
    const want = rows.map((r) => matmulRef(x.subarray(r * Kd, (r + 1) * Kd), w, 1, N, Kd));
    let want16: Float32Array[] | undefined;
    const bufs: MatmulBuffers = {
      x: gpu.storageBuffer('x', x),
      w: gpu.storageBuffer('w', w),
      w16: gpu.storageBuffer('w16', w16Host),
      wHost: w,
      w16Host,
      y: gpu.storageBuffer('y', M * N * 4),
    };
    const scope = new K.Scope(policy);
    for (const v of versions) {
      if (v.maxGflop !== undefined && flop / 1e9 > v.maxGflop) continue;
      const t0 = performance.now();
      const d = await makeRung(scope, v, bufs, M, N, Kd);
      const [bytes] = await gpu.run(v.name, [d], [{ buffer: bufs.y, bytes: M * N * 4 }]);
      if (bytes === undefined) throw new Error('missing bytes');
      const coldMs = performance.now() - t0;
      const got = new Float32Array(bytes);
      let diff = 0,
        mag = 0;
      const f16 = readsF16(v);
      if (f16) want16 ??= rows.map((r) => matmulRef(x.subarray(r * Kd, (r + 1) * Kd), w16, 1, N, Kd));
      const wanted = f16 && want16 ? want16 : want;
      rows.forEach((r, i) => {
        wanted[i]!.forEach((ref, c) => {
          diff = Math.max(diff, Math.abs(got[r * N + c]! - ref));
          mag = Math.max(mag, Math.abs(ref));
        });
      });
      const error = diff / mag;
      const { ms, cpuMs } = await timeRuns(gpu, [d], 1500, coldMs);
      const gflops = flop / ms / 1e6,
        gflopsPerCpuS = flop / cpuMs / 1e6;
      results.push({ kernel: `matmul.${v.name}`, shape, ms, coldMs, gflops, error, cpuMs, gflopsPerCpuS });
      log(
        `  ${v.name.padEnd(10)} ${coldMs.toFixed(1).padStart(10)} ${ms.toFixed(2).padStart(10)} ${gflops.toFixed(1).padStart(9)} ${(100 * (blasMs / ms)).toFixed(0).padStart(6)}% ${gflopsPerCpuS.toFixed(1).padStart(12)}   ${error.toExponential(1)}${error > 1e-5 ? '  WRONG' : ''}`,
      );
    }
    for (const b of [bufs.x, bufs.w, bufs.w16, bufs.y]) gpu.destroyBuffer(b);
    scope.destroy();
  }

  if (!only || only.includes('other')) results.push(...(await otherKernels(policy, log)));
  gpu.destroy();

  const date = new Date().toISOString().slice(0, 10);
  mkdirSync(new URL('../../bench/results/', import.meta.url), { recursive: true });
  const threads = process.env.LP_NUM_THREADS ? `-lp${process.env.LP_NUM_THREADS}` : '';
  const file = new URL(`../../bench/results/kernels-${date}${threads}.json`, import.meta.url);
  const record = {
    date: new Date().toISOString(),
    cpu,
    loadAverage: os.loadavg(),
    adapter: gpu.adapterInfo,
    subgroups: hasSubgroups,
    lpNumThreads: process.env.LP_NUM_THREADS ?? null,
    cpuFlags: simdFlags().join(' '),
    lpNativeVectorWidth: process.env.LP_NATIVE_VECTOR_WIDTH ?? null,
    blas: blas.blas,
    results,
  };
  if (!only) writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
  if (json)
    console.log(
      JSON.stringify(results.map(({ kernel, shape, ms, gflops, gbps }) => ({ kernel, shape, ms, gflops, gbps }))),
    );
  else
    log(
      `\nload average after: ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}; ${((performance.now() - started) / 1000).toFixed(0)} s${only ? '' : `; wrote ${file.pathname}`}`,
    );
}

await main();
