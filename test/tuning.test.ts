import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gpu } from '../src/runtime/gpu.js';
import { applyCachedTuning, saveTuning } from '../src/api/tuning-store.js';
import { tuneMatmuls } from '../src/kernels/autotune.js';
import * as K from '../src/kernels/index.js';
import { matmulRef } from '../src/kernels/matmul/reference.js';
import {
  applyTuningRecord,
  defaultMatmulVariant,
  matmulCandidates,
  matmulSourceFiles,
  shapeKey,
  subgroupsOf8,
  tuningKey,
  tuningOf,
  type MatmulShape,
} from '../src/kernels/tuning.js';
import { WGSL_SOURCES } from '../src/kernels/wgsl.generated.js';
import { randomArray, relativeError } from './helpers.js';

let gpu: Gpu;
let policy: K.KernelPolicy;
let scope: K.Scope;
let work: string;
beforeAll(async () => {
  gpu = await Gpu.create();
  policy = K.KernelPolicy.create(gpu);
  scope = new K.Scope(policy);
  work = mkdtempSync(join(tmpdir(), 'whylesion-tuning-'));
});
afterAll(() => {
  scope.destroy();
  gpu.destroy();
  rmSync(work, { recursive: true, force: true });
});

// Awkward sizes: M and N past the 24/32/64 tile edges, K4 = 25 not a multiple of the tiled kernel's step.
const SHAPE: MatmulShape = { M: 70, N: 100, K: 100, wDtype: 'f32' };

describe('kernel autotuner', () => {
  it('matmul() runs the choice recorded for the shape, correctly, and records the shapes it was asked for', async () => {
    const { M, N, K: Kd } = SHAPE;
    const x = randomArray(M * Kd, 1),
      w = randomArray(N * Kd, 2, 0.1),
      bias = randomArray(N, 3);
    const want = matmulRef(x, w, M, N, Kd, { bias, activation: 'gelu' });
    const tuning = tuningOf(policy);
    for (const variant of matmulCandidates(policy, SHAPE)) {
      tuning.choices.set(shapeKey(SHAPE), variant);
      const Y = scope.storage('y', M * N * 4);
      const d = await K.matmul(scope, 'mm', {
        x: scope.storage('x', x),
        w: scope.storage('w', w),
        bias: scope.storage('b', bias),
        y: Y,
        M,
        N,
        K: Kd,
        activation: 'gelu',
      });
      expect(d.kernel).toBe(K.matmulKernelName(variant));
      const [bytes] = await gpu.run('mm', [d], [{ buffer: Y, bytes: M * N * 4 }]);
      if (bytes === undefined) throw new Error('missing bytes');
      expect(relativeError(new Float32Array(bytes), want), variant).toBeLessThan(1e-5);
    }
    tuning.choices.delete(shapeKey(SHAPE));
    expect(tuning.requested.get(shapeKey(SHAPE))).toEqual(SHAPE);
    // shapes whose M rounds up to the same power of two share a choice
    expect(shapeKey({ ...SHAPE, M: 65 })).toBe(shapeKey(SHAPE));
    expect(shapeKey({ ...SHAPE, M: 129 })).not.toBe(shapeKey(SHAPE));
    // A hang guard: every candidate is a pipeline, ~65 s of compiles with Mesa's shader cache cold here.
  }, 600_000);

  it('measures every candidate, keeps the fastest, and the saved choice is applied on the same adapter only', async () => {
    const candidates = matmulCandidates(policy, SHAPE);
    expect(candidates).toContain('block');
    expect(candidates).toContain('tiled');
    if (gpu.hasCpuSizedSubgroups) expect(candidates).toContain('subgroup-3x3');
    if (policy.family === 'cpu-subgroup' && policy.subgroupLanes === 4) expect(candidates).toContain('subgroup4-4x4');
    const seen: string[] = [];
    const results = await tuneMatmuls(policy, [SHAPE, { ...SHAPE, M: 66 }], {
      runs: 2,
      onShape: (r) => seen.push(r.key),
    });
    expect(results).toHaveLength(1); // both shapes share one key
    expect(seen).toEqual([shapeKey(SHAPE)]);
    const [result] = results;
    if (result === undefined) throw new Error('missing result');
    expect(result.candidates.map((c) => c.variant).sort()).toEqual([...candidates].sort());
    for (const c of result.candidates) {
      expect(c.error, c.variant).toBeUndefined();
      expect(c.ms!).toBeGreaterThan(0);
    }
    // the fastest, unless the built-in rule's kernel is within 10% of it
    const fastest = result.candidates.reduce((a, b) => (b.ms! < a.ms! ? b : a));
    const rule = result.candidates.find((c) => c.variant === defaultMatmulVariant(policy, SHAPE.M))!;
    expect(result.choice).toBe(fastest.ms! > 0.9 * rule.ms! ? rule.variant : fastest.variant);
    const chosen = result.choice!;
    expect(tuningOf(policy).choices.get(result.key)).toBe(chosen);

    const file = join(work, 'tuning.json');
    expect(saveTuning(policy, results, file)).toBe(file);
    const saved = JSON.parse(readFileSync(file, 'utf8')) as {
      devices: Record<string, { choices: Record<string, string>; measured: Record<string, Record<string, number>> }>;
    };
    expect(Object.keys(saved.devices)).toEqual([tuningKey(policy)]);
    expect(saved.devices[tuningKey(policy)]!.choices[result.key]).toBe(chosen);
    expect(Object.keys(saved.devices[tuningKey(policy)]!.measured[result.key]!).sort()).toEqual([...candidates].sort());

    const other = await Gpu.create();
    const otherPolicy = K.KernelPolicy.create(other);
    try {
      expect(tuningOf(otherPolicy).choices.size).toBe(0);
      expect(applyCachedTuning(otherPolicy, file)).toBe(1);
      expect(tuningOf(otherPolicy).choices.get(result.key)).toBe(chosen);
      // another adapter, driver or matmul kernel source: nothing applies
      const renamed = { format: 1, devices: { [`${tuningKey(policy)}x`]: saved.devices[tuningKey(policy)] } };
      writeFileSync(join(work, 'other.json'), JSON.stringify(renamed));
      expect(applyCachedTuning(otherPolicy, join(work, 'other.json'))).toBe(0);
      // a damaged or missing cache is ignored
      writeFileSync(join(work, 'damaged.json'), '{"format": 1, "devices": ');
      expect(applyCachedTuning(otherPolicy, join(work, 'damaged.json'))).toBe(0);
      expect(applyCachedTuning(otherPolicy, join(work, 'missing.json'))).toBe(0);
    } finally {
      other.destroy();
    }
  });

  it('drops a candidate that fails and never chooses it', async () => {
    // 'subgroup-0x3' has zero rows per lane: its shader does not compile
    const shape: MatmulShape = { M: 20, N: 24, K: 16, wDtype: 'f32' };
    const [result] = await tuneMatmuls(policy, [shape], { runs: 1, candidates: ['block', 'subgroup-0x3'] });
    if (result === undefined) throw new Error('missing result');
    const failed = result.candidates.find((c) => c.variant === 'subgroup-0x3')!;
    expect(failed.ms).toBeUndefined();
    expect(failed.error).toBeTruthy();
    expect(result.choice).toBe('block');
    tuningOf(policy).choices.delete(result.key);
  });

  it('tunes f16 activations apart, outputs checked as halves', async (ctx) => {
    if (!gpu.hasF16) ctx.skip('no shader-f16');
    const shape: MatmulShape = { M: 20, N: 24, K: 64, wDtype: 'f16', xDtype: 'f16', yDtype: 'f16' };
    expect(shapeKey(shape)).toBe('matmul:f16:x16:y16:M32:K64:N24');
    expect(shapeKey({ ...shape, yDtype: 'f32' })).toBe('matmul:f16:x16:M32:K64:N24');
    const candidates = matmulCandidates(policy, shape);
    // The rule's kernel and the small-M one: each candidate is a pipeline to compile (~10 s cold each).
    const tried = [...new Set([defaultMatmulVariant(policy, shape.M, 'f16'), defaultMatmulVariant(policy, 1, 'f16')])];
    expect(candidates).toEqual(expect.arrayContaining(tried));
    const [result] = await tuneMatmuls(policy, [shape], { runs: 1, candidates: tried });
    if (result === undefined) throw new Error('missing result');
    expect(result.key).toBe(shapeKey(shape));
    // Each candidate computed the product within the f16 rounding of its outputs.
    expect(result.candidates.filter((c) => c.error)).toEqual([]);
    expect(result.candidates.map((c) => c.variant).sort()).toEqual([...tried].sort());
    tuningOf(policy).choices.delete(result.key);
    // A hang guard: 16-51 s of compiles with Mesa's shader cache cold here.
  }, 600_000);

  const fake = (info: Partial<GPUAdapterInfo>, subgroups: boolean, lanes = 8) =>
    K.KernelPolicy.create(fakeGpu(info, subgroups, lanes));
  const fakeGpu = (info: Partial<GPUAdapterInfo>, subgroups: boolean, lanes: number) =>
    Object.assign(Object.create(Gpu.prototype), {
      hasSubgroups: subgroups,
      hasF16: true,
      adapterInfo: { vendor: '', architecture: '', device: '', description: '', ...info },
      device: { adapterInfo: { subgroupMinSize: lanes, subgroupMaxSize: lanes } },
    }) as Gpu;
  const lavapipe = {
    vendor: 'mesa',
    architecture: 'software',
    device: 'llvmpipe-llvm-15',
    description: 'llvmpipe: Mesa 25.0.7',
  };

  it('built-in rule: subgroup tiles sized to M on CPU adapters with subgroups, tiled kernel on GPUs, block elsewhere', () => {
    expect([1, 8, 9, 16, 17, 257].map((M) => defaultMatmulVariant(fake(lavapipe, true), M))).toEqual([
      'subgroup-1x3',
      'subgroup-1x3',
      'subgroup-2x3',
      'subgroup-2x3',
      'subgroup-3x3',
      'subgroup-3x3',
    ]);
    // 512-bit llvmpipe: 16-lane tiles (8-lane workgroups would leave half of each vector idle), 32 rows above M = 16,
    // 48 columns above M = 1024
    expect(
      [1, 12, 16, 17, 257, 1024, 1025, 2056].map((M) => defaultMatmulVariant(fake(lavapipe, true, 16), M)),
    ).toEqual([
      'subgroup16-1x2',
      'subgroup16-1x2',
      'subgroup16-1x2',
      'subgroup16-2x2',
      'subgroup16-2x2',
      'subgroup16-2x2',
      'subgroup16-2x3',
      'subgroup16-2x3',
    ]);
    // with f16 X (half the X loads) 32×48 from M = 17 on
    expect([16, 17, 257].map((M) => defaultMatmulVariant(fake(lavapipe, true, 16), M, 'f16'))).toEqual([
      'subgroup16-1x2',
      'subgroup16-2x3',
      'subgroup16-2x3',
    ]);
    // Mesa 26's llvmpipe (LLVM 19): 32×48 from M = 17 on with f32 X too; Mesa 25.x and unversioned names keep 32×32
    const mesa26 = {
      ...lavapipe,
      device: 'llvmpipe-llvm-19-1-7-512-bits-',
      description: 'llvmpipe: Mesa 26.1.6-1~bpo13+1 (LLVM 19.1.7)',
    };
    expect([16, 17, 257, 2056].map((M) => defaultMatmulVariant(fake(mesa26, true, 16), M))).toEqual([
      'subgroup16-1x2',
      'subgroup16-2x3',
      'subgroup16-2x3',
      'subgroup16-2x3',
    ]);
    expect(fake(mesa26, true, 16).llvmpipeMesaMajor).toBe(26);
    for (const description of ['llvmpipe: Mesa 25.3.2 (LLVM 20.1.0)', 'llvmpipe (LLVM 19.1.7, 256 bits)']) {
      expect(defaultMatmulVariant(fake({ ...lavapipe, description }, true, 16), 257)).toBe('subgroup16-2x2');
    }
    // a hardware adapter's description naming Mesa is no llvmpipe
    expect(
      fake({ vendor: 'amd', description: 'AMD Radeon (RADV NAVI21) Mesa 26.1.6' }, true, 32).llvmpipeMesaMajor,
    ).toBe(undefined);
    // 4-lane subgroups on llvmpipe (128 bits, e.g. ARM): the 4-lane tiles (8-lane workgroups would span two
    // subgroups). SwiftShader's 4 lanes take the same tiles spelled out (it does not unroll loops): 4×32 for
    // M ≤ 16, 32×48 above.
    const swiftshader = { vendor: 'google', architecture: 'swiftshader', description: 'SwiftShader Device (Subzero)' };
    const llvmpipe128 = fake(lavapipe, true, 4);
    expect([1, 16, 17, 257].map((M) => defaultMatmulVariant(llvmpipe128, M))).toEqual([
      'subgroup4-1x4',
      'subgroup4-1x4',
      'subgroup4-4x4',
      'subgroup4-4x4',
    ]);
    expect(llvmpipe128.family).toBe('cpu-subgroup');
    expect(subgroupsOf8(llvmpipe128)).toBe(false);
    const swiftshader4 = fake(swiftshader, true, 4);
    expect([1, 16, 17, 257].map((M) => defaultMatmulVariant(swiftshader4, M))).toEqual([
      'unrolled4-1x8',
      'unrolled4-1x8',
      'unrolled4-8x12',
      'unrolled4-8x12',
    ]);
    expect([swiftshader4.family, swiftshader4.needsUnrolledKernels, llvmpipe128.needsUnrolledKernels]).toEqual([
      'cpu-subgroup',
      true,
      false,
    ]);
    // without developer features Chromium names SwiftShader only by vendor and architecture
    expect(defaultMatmulVariant(fake({ vendor: 'google', architecture: 'swiftshader' }, true, 4), 257)).toBe(
      'unrolled4-8x12',
    );
    expect(defaultMatmulVariant(fake(swiftshader, false), 257)).toBe('block'); // SwiftShader without subgroups
    expect(defaultMatmulVariant(fake(lavapipe, false), 257)).toBe('block'); // Deno on lavapipe
    // a hardware GPU with 4-lane subgroups keeps the GPU kernels
    expect(defaultMatmulVariant(fake({ vendor: 'arm', description: 'Mali-G52' }, true, 4), 257)).toBe('tiled');
    expect(
      defaultMatmulVariant(
        fake({ vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H100 80GB HBM3' }, true, 32),
        257,
      ),
    ).toBe('tiled');
    expect(defaultMatmulVariant(fake({}, false), 257)).toBe('block'); // nothing known
  });

  it('the tuning key hashes exactly the files of every matmul the device can launch', () => {
    const lanes16 = fake(lavapipe, true, 16),
      lanes8 = fake(lavapipe, true, 8);
    const hardware = fake({ vendor: 'nvidia', description: 'NVIDIA H100 80GB HBM3' }, true, 32);
    const portable = [
      'activations.wgsl',
      'epilogue.wgsl',
      'matmul.wgsl',
      'matmul_io.wgsl',
      'matmul_scalar.wgsl',
      'matmul_tiled.wgsl',
      // every vec4 kernel also reads and writes f16 activations
      'matmul_x_f16.wgsl',
      'matmul_x_f32.wgsl',
      'matmul_y_f16.wgsl',
      'matmul_y_f32.wgsl',
    ];
    const subgroup = [
      'matmul_packed.wgsl',
      'matmul_subgroup.wgsl',
      'matmul_w_f16.wgsl',
      'matmul_w_f32.wgsl',
      'subgroup_store_f16.wgsl',
      'subgroup_store_f32.wgsl',
      'subgroup_lanes_8.wgsl',
      'subgroup_tile.wgsl',
    ];
    expect(matmulSourceFiles(hardware)).toEqual(portable);
    expect(matmulSourceFiles(lanes8)).toEqual([...portable, ...subgroup].sort());
    // at 16 lanes f16 weights keep [N, K] (no packed kernel)
    const lanes16Files = [...portable, ...subgroup.filter((f) => f !== 'matmul_packed.wgsl'), 'subgroup_lanes_16.wgsl'];
    expect(matmulSourceFiles(lanes16)).toEqual(lanes16Files.sort());
    const edited = (name: string) => ({ ...WGSL_SOURCES, [name]: `${WGSL_SOURCES[name]}\n// edited` });
    for (const device of [lanes16, lanes8, hardware]) {
      const included = matmulSourceFiles(device);
      for (const name of Object.keys(WGSL_SOURCES)) {
        expect(
          tuningKey(device, edited(name)) !== tuningKey(device),
          `${device.gpu.adapterInfo.description}: ${name}`,
        ).toBe(included.includes(name));
      }
    }
  });

  it('ignores saved choices that name no kernel this device runs', () => {
    const key = shapeKey({ M: 8, N: 8, K: 8, wDtype: 'f32' });
    const applied = applyTuningRecord(policy, {
      choices: { [key]: 'subgroup-9x9', 'layernorm:x': 'block', [`${key}:2`]: 'rm -rf' } as never,
    });
    expect(applied).toBe(0);
    expect(tuningOf(policy).choices.has(key)).toBe(false);
    expect(applyTuningRecord(policy, { choices: { [key]: 'tiled' } })).toBe(1);
    tuningOf(policy).choices.delete(key);
  });
});
