import { UserError } from '../errors.js';

/** What the engine needs from an adapter, and the optional features it uses when offered. */
const WANTED_FEATURES: GPUFeatureName[] = ['shader-f16', 'timestamp-query', 'subgroups' as GPUFeatureName];

// Dawn's `create()` result and the adapter must outlive every device made from them: if they are
// garbage-collected the process segfaults. Held here for the life of the process.
const keepAlive: unknown[] = [];

let dawnGpu: Promise<GPU> | undefined;

function navigatorGpu(): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return Promise.resolve(nav.gpu); // Deno, browsers
  dawnGpu ??= createDawnGpu();
  return dawnGpu;
}

/** Reads /proc/cpuinfo (Linux); undefined where it cannot be read (other systems, Deno without --allow-read). */
async function cpuFlags(): Promise<Set<string> | undefined> {
  try {
    const moduleName = 'node:fs';
    const { readFileSync } = (await import(moduleName)) as typeof import('node:fs');
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
    return line ? new Set(line.slice(line.indexOf(':') + 1).trim().split(/\s+/)) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * How llvmpipe's SIMD width (LP_NATIVE_VECTOR_WIDTH, read once when Dawn loads the driver) was decided,
 * for `whylesion info`: the environment's value, 512 bits because the CPU has AVX-512, or Mesa's own default.
 */
export interface VectorWidthChoice { bits: number | undefined; reason: string }
let vectorWidth: VectorWidthChoice | undefined;

export function vectorWidthChoice(): VectorWidthChoice | undefined {
  return vectorWidth;
}

/**
 * Picks llvmpipe's vector width before Dawn starts: Mesa 25 defaults to min(CPU, 256) bits, but on an
 * AVX-512 CPU 512 bits (16-lane subgroups, 32 zmm registers) ran the image tower in 3.90 s instead of 4.54 s
 * with the same numbers (issue #16's measurement; bench/README.md), so the engine asks for 512 there unless
 * the environment sets a width.
 */
export function chooseVectorWidth(env: Record<string, string | undefined>, flags: Set<string> | undefined): VectorWidthChoice {
  const set = env.LP_NATIVE_VECTOR_WIDTH;
  if (set !== undefined) return { bits: Number(set) || undefined, reason: `LP_NATIVE_VECTOR_WIDTH=${set} from the environment` };
  if (flags?.has('avx512f')) {
    env.LP_NATIVE_VECTOR_WIDTH = '512';
    return { bits: 512, reason: 'the CPU has AVX-512 (avx512f), so the engine set LP_NATIVE_VECTOR_WIDTH=512' };
  }
  return { bits: undefined, reason: flags ? 'no AVX-512 on this CPU: Mesa\'s default (at most 256 bits)' : 'CPU flags unreadable: Mesa\'s default (at most 256 bits)' };
}

/** Node: Dawn through the `webgpu` package, created once per process and imported lazily (other runtimes never load it). */
async function createDawnGpu(): Promise<GPU> {
  // Mesa's llvmpipe (the CPU driver) reads its thread count when the device is made. More threads than
  // cores measured up to 4x faster kernels on 2 cores (bench/README.md), so default to 16 unless the user chose.
  const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env;
  if (env && env.LP_NUM_THREADS === undefined) env.LP_NUM_THREADS = '16';
  if (env) vectorWidth = chooseVectorWidth(env, await cpuFlags());
  const moduleName = 'webgpu';
  const dawn = (await import(moduleName)) as { create: (flags: string[]) => GPU; globals: object };
  Object.assign(globalThis, dawn.globals);
  const gpu = dawn.create([]);
  keepAlive.push(gpu);
  return gpu;
}

const NO_ADAPTER =
  'No WebGPU adapter was found. On a machine without a GPU install Mesa\'s lavapipe driver ' +
  '(run `sudo bash scripts/setup-webgpu.sh` from the whylesion folder, or on Debian 12: ' +
  '`apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1`), then try again.';

export interface AcquiredDevice {
  device: GPUDevice;
  adapterInfo: { vendor: string; architecture: string; device: string; description: string };
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
  device.createShaderModule({ label: 'subgroups probe', code: 'enable subgroups;\n@compute @workgroup_size(1) fn main() {}\n' });
  return (await device.popErrorScope()) === null;
}

/** Gets a GPUDevice with the limits and features the model needs, or uses the one the caller passes. */
export async function acquireDevice(options: { device?: GPUDevice } = {}): Promise<AcquiredDevice> {
  if (options.device) {
    const device = options.device;
    return { device, adapterInfo: describeAdapter(undefined), owned: false, subgroups: await compilesSubgroupShaders(device) };
  }
  let gpu: GPU;
  try {
    gpu = await navigatorGpu();
  } catch (cause) {
    throw new UserError(NO_ADAPTER, { cause });
  }
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new UserError(NO_ADAPTER);
  keepAlive.push(adapter);
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
  keepAlive.push(device);
  return { device, adapterInfo: describeAdapter(adapter), owned: true, subgroups: await compilesSubgroupShaders(device) };
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
