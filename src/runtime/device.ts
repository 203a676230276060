import { UserError } from '../errors.js';
import { platform } from '../platform/index.js';

/** What the engine needs from an adapter, and the optional features it uses when offered. */
const WANTED_FEATURES: GPUFeatureName[] = ['shader-f16', 'timestamp-query', 'subgroups' as GPUFeatureName];

export interface AcquiredDevice {
  device: GPUDevice;
  adapterInfo: { vendor: string; architecture: string; device: string; description: string };
  /** The adapter the engine made the device from: Dawn segfaults if it is garbage-collected while the device lives, so the Gpu holds it. */
  adapter?: GPUAdapter;
  /** True when the engine made the device (and so may destroy it); false for a caller's device. */
  owned: boolean;
  /** The device has the `subgroups` feature and its WGSL compiler accepts `enable subgroups;`. */
  subgroups: boolean;
}

/**
 * Whether shaders that `enable subgroups;` compile on this device. The feature alone is not enough: wgpu
 * (Deno, Firefox) can offer it while its WGSL compiler, Naga, still rejects the directive.
 */
async function compilesSubgroupShaders(device: GPUDevice): Promise<boolean> {
  if (!device.features.has('subgroups' as GPUFeatureName)) return false;
  device.pushErrorScope('validation');
  device.createShaderModule({
    label: 'subgroups probe',
    code: 'enable subgroups;\n@compute @workgroup_size(1) fn main() {}\n',
  });
  return (await device.popErrorScope()) === null;
}

/** Gets a GPUDevice with the limits and features the model needs, or uses the one the caller passes. */
export async function acquireDevice(options: { device?: GPUDevice } = {}): Promise<AcquiredDevice> {
  if (options.device) {
    const device = options.device;
    return {
      device,
      adapterInfo: describeAdapter(undefined),
      owned: false,
      subgroups: await compilesSubgroupShaders(device),
    };
  }
  let gpu: GPU;
  try {
    gpu = await platform.webgpu();
  } catch (cause) {
    throw new UserError(platform.noAdapterMessage, { cause });
  }
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new UserError(platform.noAdapterMessage);
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      maxBufferSize: adapter.limits.maxBufferSize,
      maxStorageBuffersPerShaderStage: Math.min(adapter.limits.maxStorageBuffersPerShaderStage, 10),
      maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: adapter.limits.maxComputeInvocationsPerWorkgroup,
    },
  });
  return {
    device,
    adapter,
    adapterInfo: describeAdapter(adapter),
    owned: true,
    subgroups: await compilesSubgroupShaders(device),
  };
}

function describeAdapter(adapter: GPUAdapter | undefined): AcquiredDevice['adapterInfo'] {
  const info = (adapter as { info?: GPUAdapterInfo } | undefined)?.info;
  return {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
  };
}
