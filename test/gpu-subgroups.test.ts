import { describe, expect, it } from 'vitest';
import { acquireDevice } from '../src/runtime/device.js';
import { join } from 'node:path';
import {
  chooseVectorWidth,
  llvmpipeEnv,
  vectorWidthChoice,
  widthShaderCacheDir,
} from '../src/platform/vector-width.js';
import { KernelPolicy } from '../src/kernels/policy.js';
import { Gpu } from '../src/runtime/gpu.js';
import { adapterKind, subgroupSizes, subgroupsOf4, subgroupsOf8 } from '../src/kernels/tuning.js';

/** A caller's device whose WGSL compiler answers the `enable subgroups;` probe with `compileError` (or accepts it). */
function fakeDevice(features: string[], compileError?: string): { device: GPUDevice; compiled: string[] } {
  const compiled: string[] = [];
  const device = {
    features: new Set(features),
    pushErrorScope: () => undefined,
    createShaderModule: ({ code }: { code: string }) => compiled.push(code),
    popErrorScope: async () => (compileError === undefined ? null : { message: compileError }),
  } as unknown as GPUDevice;
  return { device, compiled };
}

describe('subgroup kernels are allowed only where `enable subgroups;` compiles', () => {
  it('refuses them when the feature is offered but the compiler rejects the directive (wgpu/Naga: Deno, Firefox)', async () => {
    const { device, compiled } = fakeDevice(
      ['shader-f16', 'subgroups'],
      'the `subgroups` enable-extension is not yet supported',
    );
    expect((await acquireDevice({ device })).subgroups).toBe(false);
    expect(compiled).toHaveLength(1);
    expect(compiled[0]).toMatch(/^enable subgroups;/);
  });

  it('allows them when the feature is offered and the directive compiles', async () => {
    const { device } = fakeDevice(['subgroups']);
    expect((await acquireDevice({ device })).subgroups).toBe(true);
  });

  it('refuses them without compiling anything when the feature is not offered (Deno on lavapipe)', async () => {
    const { device, compiled } = fakeDevice(['shader-f16', 'timestamp-query']);
    expect((await acquireDevice({ device })).subgroups).toBe(false);
    expect(compiled).toHaveLength(0);
  });

  it("agrees with the device's features on Dawn, whose compiler (Tint) supports the directive", async () => {
    const gpu = await Gpu.create();
    try {
      expect(gpu.hasSubgroups).toBe(gpu.device.features.has('subgroups' as GPUFeatureName));
    } finally {
      gpu.destroy();
    }
  });
});

describe("llvmpipe's vector width is chosen per machine before Dawn starts", () => {
  it('asks for 512 bits on an AVX-512 CPU when the environment sets no width', () => {
    const env: Record<string, string | undefined> = {};
    expect(chooseVectorWidth(env, new Set(['sse2', 'avx2', 'avx512f']))).toMatchObject({ bits: 512 });
    expect(env.LP_NATIVE_VECTOR_WIDTH).toBe('512');
  });

  it("keeps the environment's width, and Mesa's default without AVX-512 or without CPU flags", () => {
    const set = { LP_NATIVE_VECTOR_WIDTH: '256' };
    expect(chooseVectorWidth(set, new Set(['avx512f']))).toMatchObject({
      bits: 256,
      reason: expect.stringMatching(/environment/),
    });
    expect(set.LP_NATIVE_VECTOR_WIDTH).toBe('256');
    for (const flags of [new Set(['sse2', 'avx2']), undefined]) {
      const env: Record<string, string | undefined> = {};
      expect(chooseVectorWidth(env, flags).bits).toBeUndefined();
      expect(env).toEqual({});
    }
  });

  it("keeps each width's compiled shaders in a folder of its own unless the user named one or turned the cache off", () => {
    // Mesa keys its shader cache by CPU and shader, not by width: code compiled at 512 bits would serve 256.
    expect(widthShaderCacheDir({ LP_NATIVE_VECTOR_WIDTH: '512' }, '/home/u')).toBe(
      join('/home/u', '.cache', 'mesa_shader_cache_lp512'),
    );
    expect(widthShaderCacheDir({ LP_NATIVE_VECTOR_WIDTH: '128', XDG_CACHE_HOME: '/x' }, '/home/u')).toBe(
      join('/x', 'mesa_shader_cache_lp128'),
    );
    expect(widthShaderCacheDir({}, '/home/u')).toBeUndefined(); // Mesa's default width: Mesa's own folder
    expect(
      widthShaderCacheDir({ LP_NATIVE_VECTOR_WIDTH: '512', MESA_SHADER_CACHE_DIR: '/mine' }, '/h'),
    ).toBeUndefined();
    expect(
      widthShaderCacheDir({ LP_NATIVE_VECTOR_WIDTH: '512', MESA_SHADER_CACHE_DISABLE: 'true' }, '/h'),
    ).toBeUndefined();
    expect(widthShaderCacheDir({ LP_NATIVE_VECTOR_WIDTH: '512' }, undefined)).toBeUndefined();
    // applied to a copy: the caller's environment is left as it was
    const env = { LP_NATIVE_VECTOR_WIDTH: '256', HOME: '/home/u' };
    expect(llvmpipeEnv(env).MESA_SHADER_CACHE_DIR).toBe(join('/home/u', '.cache', 'mesa_shader_cache_lp256'));
    expect(env).toEqual({ LP_NATIVE_VECTOR_WIDTH: '256', HOME: '/home/u' });
  });

  it('on lavapipe the subgroup size follows the width (4 lanes at 128 bits, 8 at 256, 16 at 512) and the subgroup kernels stay on', async (ctx) => {
    const gpu = await Gpu.create();
    try {
      if (adapterKind(gpu) !== 'cpu' || !/llvmpipe/.test(gpu.adapterInfo.device + gpu.adapterInfo.description)) {
        ctx.skip(true, "not llvmpipe: the vector width only applies to Mesa's CPU driver");
      }
      const bits = Number(/(\d+)-bits/.exec(gpu.adapterInfo.device)?.[1]);
      const choice = vectorWidthChoice();
      expect(choice).toBeDefined();
      if (choice!.bits) expect(bits).toBe(choice!.bits);
      expect(subgroupSizes(gpu)).toEqual({ min: bits / 32, max: bits / 32 });
      // 8-16 lanes: the 8/16-lane subgroup kernels; 4 lanes (128 bits, e.g. ARM): their 4-lane widths
      const policy = KernelPolicy.create(gpu);
      expect(policy.family).toBe(gpu.hasSubgroups ? 'cpu-subgroup' : 'portable');
      expect(subgroupsOf8(policy)).toBe(gpu.hasSubgroups && bits >= 256);
      expect(subgroupsOf4(policy)).toBe(gpu.hasSubgroups && bits === 128);
    } finally {
      gpu.destroy();
    }
  });
});
