/**
 * The kernel policy a plan runs under: the kernel family the built-in rules pick from, and the measured
 * choices (the tuner's, or its cache's) that override them per matmul shape. A model holds one for its device
 * and hands it to every plan it builds and to its weight upload, so that how matmul weights are laid out
 * (uploadMatmulWeights) follows from the family the plans run, not from a separate decision at load.
 */
import { UserError } from '../errors.js';
import type { Gpu } from '../runtime/gpu.js';

/**
 * 'cpu-subgroup' (one 4/8/16-lane subgroup per workgroup, for llvmpipe), 'gpu'
 * (workgroup-tiled matmul, portable attention and layernorm, as on hardware GPUs) or 'portable' (no subgroups,
 * no workgroup tiles). 'auto' decides from the adapter.
 */
export type KernelFamily = 'cpu-subgroup' | 'gpu' | 'portable';
export const KERNEL_FAMILIES: readonly (KernelFamily | 'auto')[] = ['auto', 'cpu-subgroup', 'gpu', 'portable'];

export type WeightDtype = 'f32' | 'f16';

/**
 * A matmul kernel with its shape parameters: `subgroup-RxC` is matmul_subgroup.wgsl with R X rows and
 * C W rows per lane (an 8R×8C tile per 8-lane workgroup), `subgroup16-RxC` the same with 16 lanes (a
 * 16R×16C tile; subgroups of 16 only), `subgroup4-RxC` with 4 (subgroups of 4 only), `unrolled4-RxC` the 4-lane
 * tile spelled out (matmul_subgroup_unrolled.wgsl, for SwiftShader), `block` matmul.wgsl
 * (4×4 per invocation, no workgroup memory), `tiled` matmul_tiled.wgsl (64×64 workgroup-memory tiles, 256 invocations).
 */
export type MatmulVariant =
  | 'block'
  | 'tiled'
  | `subgroup-${number}x${number}`
  | `subgroup16-${number}x${number}`
  | `subgroup4-${number}x${number}`
  | `unrolled4-${number}x${number}`;

export interface MatmulShape {
  M: number;
  N: number;
  K: number;
  wDtype: WeightDtype;
  /** f16 activations in X or Y (default f32): other kernels run, so the choice is made and kept apart. */
  xDtype?: 'f32' | 'f16';
  yDtype?: 'f32' | 'f16';
}

/** Groups M (rows: tokens × batch) by the next power of two, so one choice serves similar batch sizes. */
function rowBucket(M: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(M, 1)));
}

export function shapeKey(s: MatmulShape): string {
  const io = `${s.xDtype === 'f16' ? ':x16' : ''}${s.yDtype === 'f16' ? ':y16' : ''}`;
  return `matmul:${s.wDtype}${io}:M${rowBucket(s.M)}:K${s.K}:N${s.N}`;
}

/**
 * Measured kernel choices: they override the built-in rules; `requested` records every matmul shape planned
 * so far, which is what the tuner measures.
 */
export class KernelTuning {
  readonly choices = new Map<string, MatmulVariant>();
  readonly requested = new Map<string, MatmulShape>();

  choose(shape: MatmulShape): MatmulVariant | undefined {
    const key = shapeKey(shape);
    if (!this.requested.has(key)) this.requested.set(key, shape);
    return this.choices.get(key);
  }
}

/** How matmul weights are laid out in GPU memory: W[N, K] rows, or f16 packed for matmul_packed.wgsl. */
export type MatmulWeightLayout = 'rows' | 'packed';

export class KernelPolicy {
  readonly tuning = new KernelTuning();

  private constructor(
    readonly gpu: Gpu,
    readonly family: KernelFamily,
    /** Whether the caller named the family (then measured choices, made under 'auto', do not apply). */
    readonly forced: boolean,
  ) {}

  /** The policy for this device: the family named, or the adapter's under 'auto' (the default). */
  static create(gpu: Gpu, kernels: KernelFamily | 'auto' = 'auto'): KernelPolicy {
    if (!KERNEL_FAMILIES.includes(kernels))
      throw new UserError(`Kernel family '${kernels}' is not one of ${KERNEL_FAMILIES.join(', ')}.`);
    if (kernels === 'cpu-subgroup' && !gpu.hasCpuSizedSubgroups && !hasFourLaneSubgroups(gpu)) {
      throw new UserError(
        `The 'cpu-subgroup' kernels need WebGPU subgroups of 4, 8 or 16 lanes, which this adapter does not offer; use 'auto', 'gpu' or 'portable'.`,
      );
    }
    return new KernelPolicy(gpu, kernels === 'auto' ? autoFamily(gpu) : kernels, kernels !== 'auto');
  }

  /**
   * Whether the adapter's shader compiler keeps loops and arrays as written (SwiftShader: no loop unrolling, so
   * an array indexed by a loop counter lives in memory and each access is a per-lane gather); kernels that have
   * a spelled-out form (//!unroll) then run it.
   */
  get needsUnrolledKernels(): boolean {
    return isSwiftShader(this.gpu);
  }

  /** Mesa's major version where the adapter is llvmpipe (its description says "Mesa 26.1.6 …"), else undefined. */
  get llvmpipeMesaMajor(): number | undefined {
    if (!isLlvmpipe(this.gpu)) return undefined;
    const version = /\bMesa (\d+)\.\d+/.exec(this.gpu.adapterInfo.description);
    return version ? Number(version[1]) : undefined;
  }

  /** The adapter's subgroup width when all its subgroups have one (llvmpipe: 8 at 256 bits, 16 at 512). */
  get subgroupLanes(): number | undefined {
    const sizes = subgroupSizes(this.gpu);
    return sizes && sizes.min === sizes.max ? sizes.min : undefined;
  }

  /**
   * The layout uploadMatmulWeights gives W[N, K] of this dtype: f16 weights are packed for matmul_packed.wgsl
   * where this family runs the 8-lane subgroup kernels (llvmpipe at 256 bits) and K is a multiple of 4; f32
   * weights, 16-lane subgroups and other families keep [N, K]. At 16 lanes a 16×32 packed tile measured 1.3-1.6×
   * slower than the f32 rule's kernel on [N, K] f16 weights at M = 12 and at most ~10 % faster at M ≥ 257
   * (bench/README.md, fifth pass); packing f32 measured no steady gain.
   */
  matmulWeightLayout(dtype: WeightDtype, K: number): MatmulWeightLayout {
    const lanes = this.subgroupLanes;
    const packs = dtype === 'f16' && K % 4 === 0 && this.family === 'cpu-subgroup' && lanes !== 16 && lanes !== 4;
    return packs ? 'packed' : 'rows';
  }
}

/**
 * Subgroups of exactly 4 lanes (llvmpipe's at 128 bits, SwiftShader's): the 4-lane subgroup kernels run there.
 * Under 'auto' llvmpipe and SwiftShader take them (SwiftShader the spelled-out matmul: the looped tiles ran
 * 3.6-4.8× slower than the portable block kernel there, the spelled-out 32×48 tile 3.3-4.1× faster; bench/README.md,
 * fifth and eighth passes); a GPU with 4-lane subgroups is not known to suit them.
 */
function hasFourLaneSubgroups(gpu: Gpu): boolean {
  const sizes = subgroupSizes(gpu);
  return gpu.hasSubgroups && sizes?.min === 4 && sizes.max === 4;
}

/** The device's subgroup sizes as its adapter reports them (llvmpipe: 8 lanes at 256 bits, 16 at 512). */
export function subgroupSizes(gpu: Gpu): { min: number; max: number } | undefined {
  const info = (gpu.device as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  return info?.subgroupMinSize
    ? { min: info.subgroupMinSize, max: info.subgroupMaxSize ?? info.subgroupMinSize }
    : undefined;
}

/** The family the adapter suits: CPU-sized subgroups, else a hardware GPU's, else the portable kernels. */
function autoFamily(gpu: Gpu): KernelFamily {
  if (gpu.hasCpuSizedSubgroups || (hasFourLaneSubgroups(gpu) && (isLlvmpipe(gpu) || isSwiftShader(gpu))))
    return 'cpu-subgroup';
  return adapterKind(gpu) === 'gpu' ? 'gpu' : 'portable';
}

/** Mesa's llvmpipe (lavapipe), by the adapter's names. */
function isLlvmpipe(gpu: Gpu): boolean {
  const info = gpu.adapterInfo;
  return /llvmpipe|lavapipe/i.test([info.vendor, info.architecture, info.device, info.description].join(' '));
}

/** Google's SwiftShader (Chromium's CPU adapter), by the adapter's names. */
function isSwiftShader(gpu: Gpu): boolean {
  const info = gpu.adapterInfo;
  return /swiftshader/i.test([info.vendor, info.architecture, info.device, info.description].join(' '));
}

/** 'cpu' for software rasterizers (lavapipe/llvmpipe, SwiftShader, WARP), 'gpu' for a named hardware adapter. */
export function adapterKind(gpu: Gpu): 'cpu' | 'gpu' | 'unknown' {
  const own = gpu.adapterInfo;
  const info = (gpu.device as { adapterInfo?: Partial<GPUAdapterInfo> }).adapterInfo ?? {};
  const text = [
    own.vendor,
    own.architecture,
    own.device,
    own.description,
    info.vendor,
    info.architecture,
    info.device,
    info.description,
  ]
    .filter(Boolean)
    .join(' ');
  if (!text.trim()) return 'unknown';
  return /llvmpipe|lavapipe|softpipe|swiftshader|software|basic render|\bwarp\b/i.test(text) ? 'cpu' : 'gpu';
}
