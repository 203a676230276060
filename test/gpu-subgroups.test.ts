import { describe, expect, it } from 'vitest';
import { acquireDevice } from '../src/gpu/device.js';
import { Gpu } from '../src/gpu/gpu.js';

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
    const { device, compiled } = fakeDevice(['shader-f16', 'subgroups'], 'the `subgroups` enable-extension is not yet supported');
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
