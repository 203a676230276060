import type { Gpu, KernelFamily } from '../runtime/gpu.js';
import { WGSL_SOURCES } from './wgsl.generated.js';

export type WeightDtype = 'f32' | 'f16';

/**
 * A matmul kernel with its shape parameters: `subgroup-RxC` is matmul_subgroup.wgsl with R X rows and
 * C W rows per lane (an 8R×8C tile per 8-lane workgroup), `subgroup16-RxC` the same with 16 lanes (a
 * 16R×16C tile; subgroups of 16 only), `block` matmul.wgsl (4×4 per invocation, no workgroup memory),
 * `tiled` matmul_tiled.wgsl (64×64 workgroup-memory tiles, 256 invocations).
 */
export type MatmulVariant = 'block' | 'tiled' | `subgroup-${number}x${number}` | `subgroup16-${number}x${number}`;

export interface MatmulShape { M: number; N: number; K: number; wDtype: WeightDtype }

/** Variants the tuner tries; the subgroup ones only where subgroups run 8-16 lanes (CPU adapters). */
const SUBGROUP_VARIANTS: MatmulVariant[] = ['subgroup-3x3', 'subgroup-2x3', 'subgroup-1x3', 'subgroup-3x2', 'subgroup-2x2', 'subgroup-4x3'];
/**
 * 16-lane tiles where subgroups have 16 lanes (llvmpipe at 512 bits): 32×48, 32×32 and 16×48 (96, 64 and
 * 48 accumulators, each one 16-lane register). In the ladder (bench/README.md, third pass) 32×48 beat the
 * 8-lane 24×24 tile on every ViT-L/14 shape, and the tuner chose each of the three for some shape; the
 * rule keeps 24×24 until an end-to-end A/B says otherwise, so only the tuner picks these.
 */
const SUBGROUP16_VARIANTS: MatmulVariant[] = ['subgroup16-2x3', 'subgroup16-2x2', 'subgroup16-1x3'];
const PORTABLE_VARIANTS: MatmulVariant[] = ['block', 'tiled'];

export function parseSubgroupVariant(variant: MatmulVariant): { lanes: 8 | 16; rows: number; cols: number } | undefined {
  const m = /^subgroup(16)?-(\d)x(\d)$/.exec(variant);
  return m ? { lanes: m[1] ? 16 : 8, rows: Number(m[2]), cols: Number(m[3]) } : undefined;
}

/** Groups M (rows: tokens × batch) by the next power of two, so one choice serves similar batch sizes. */
function rowBucket(M: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(M, 1)));
}

export function shapeKey(s: MatmulShape): string {
  return `matmul:${s.wDtype}:M${rowBucket(s.M)}:K${s.K}:N${s.N}`;
}

/**
 * Kernel choices for one device: measured ones (from the autotuner or its cache) override the built-in
 * rules; `requested` records every matmul shape planned so far, which is what the tuner measures.
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

const tunings = new WeakMap<Gpu, KernelTuning>();

export function tuningOf(gpu: Gpu): KernelTuning {
  let tuning = tunings.get(gpu);
  if (!tuning) tunings.set(gpu, (tuning = new KernelTuning()));
  return tuning;
}

/** The device's subgroup sizes as its adapter reports them (llvmpipe: 8 lanes at 256 bits, 16 at 512). */
export function subgroupSizes(gpu: Gpu): { min: number; max: number } | undefined {
  const info = (gpu.device as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  return info?.subgroupMinSize ? { min: info.subgroupMinSize, max: info.subgroupMaxSize ?? info.subgroupMinSize } : undefined;
}

/** Whether the subgroup kernels (one 8-lane subgroup per workgroup; see Gpu.hasCpuSizedSubgroups) run on this device. */
export function subgroupsOf8(gpu: Gpu): boolean {
  return kernelFamily(gpu) === 'cpu-subgroup';
}

/** Whether the 16-lane subgroup kernels run here too: every subgroup has exactly 16 lanes (llvmpipe at 512 bits). */
export function subgroupsOf16(gpu: Gpu): boolean {
  const sizes = subgroupSizes(gpu);
  return subgroupsOf8(gpu) && sizes !== undefined && sizes.min === 16 && sizes.max === 16;
}

/** The kernel family the built-in rules use on this device: the caller's choice, else the adapter's. */
export function kernelFamily(gpu: Gpu): KernelFamily {
  if (gpu.forcedKernelFamily) return gpu.forcedKernelFamily;
  if (gpu.hasCpuSizedSubgroups) return 'cpu-subgroup';
  return adapterKind(gpu) === 'gpu' ? 'gpu' : 'portable';
}

/** 'cpu' for software rasterizers (lavapipe/llvmpipe, SwiftShader, WARP), 'gpu' for a named hardware adapter. */
export function adapterKind(gpu: Gpu): 'cpu' | 'gpu' | 'unknown' {
  const own = gpu.adapterInfo;
  const info = (gpu.device as { adapterInfo?: Partial<GPUAdapterInfo> }).adapterInfo ?? {};
  const text = [own.vendor, own.architecture, own.device, own.description, info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ');
  if (!text.trim()) return 'unknown';
  return /llvmpipe|lavapipe|softpipe|swiftshader|software|basic render|\bwarp\b/i.test(text) ? 'cpu' : 'gpu';
}

/**
 * The built-in rule, used until a measurement says otherwise: on CPU adapters with subgroups the 24×24
 * subgroup tile, with fewer rows (8 or 16) when M is that small (prompts on their EOT rows, class tokens),
 * which measured 1.1-3× faster than 24 rows at M = 1-12 (tuner runs in bench/README.md); on hardware
 * GPUs the workgroup-memory tiled kernel (the usual GPU design; not measured here, as no GPU was
 * available: `whylesion tune` checks it); elsewhere (CPU adapters without subgroups, e.g. Deno on
 * lavapipe) the 4×4-block kernel, which measured ~2× the tiled one on lavapipe through Dawn.
 */
export function defaultMatmulVariant(gpu: Gpu, M: number): MatmulVariant {
  const family = kernelFamily(gpu);
  if (family === 'cpu-subgroup') return `subgroup-${Math.min(3, Math.max(1, Math.ceil(M / 8)))}x3`;
  return family === 'gpu' ? 'tiled' : 'block';
}

export function matmulCandidates(gpu: Gpu, shape: MatmulShape): MatmulVariant[] {
  if (shape.K % 4 !== 0) return [];
  if (shape.wDtype === 'f16' && !gpu.hasF16) return [];
  return [...(subgroupsOf8(gpu) ? SUBGROUP_VARIANTS : []), ...(subgroupsOf16(gpu) ? SUBGROUP16_VARIANTS : []), ...PORTABLE_VARIANTS];
}

/** Bump when matmul()'s dispatch geometry or the rule changes without a shader edit (saved choices then lapse). */
const LAUNCH_VERSION = 1;

/**
 * Names the device and the matmul kernels' sources: a cached choice is only reused on the same adapter
 * and driver with the same kernels (any edit to a matmul shader invalidates it).
 */
export function tuningKey(gpu: Gpu): string {
  const info = gpu.adapterInfo;
  const adapter = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' / ') || 'unknown adapter';
  let hash = 0x811c9dc5;
  for (const name of Object.keys(WGSL_SOURCES).filter((n) => n.startsWith('matmul') || n.startsWith('subgroup_') || n === 'epilogue.wgsl').sort()) {
    for (const ch of WGSL_SOURCES[name]) hash = Math.imul(hash ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  }
  return `${adapter} | kernels ${hash.toString(16).padStart(8, '0')} | launch ${LAUNCH_VERSION}`;
}

/** What the tuner saves per device: the choice per shape key and what each candidate measured (ms). */
export interface TuningRecord {
  choices: Record<string, MatmulVariant>;
  measured: Record<string, Partial<Record<MatmulVariant, number>>>;
  date: string;
}

/** Whether a saved choice names a kernel this device can run (a cache file is data, not trusted code). */
export function isUsableVariant(gpu: Gpu, variant: unknown): variant is MatmulVariant {
  if (variant === 'block' || variant === 'tiled') return true;
  if (typeof variant !== 'string') return false;
  if (/^subgroup-[1-4]x[1-4]$/.test(variant)) return subgroupsOf8(gpu);
  return /^subgroup16-[1-3]x[1-3]$/.test(variant) && subgroupsOf16(gpu);
}

/** Applies a saved record's choices to this device; returns how many were usable. */
export function applyTuningRecord(gpu: Gpu, record: Partial<TuningRecord>): number {
  const tuning = tuningOf(gpu);
  let applied = 0;
  for (const [key, variant] of Object.entries(record.choices ?? {})) {
    if (!key.startsWith('matmul:') || !isUsableVariant(gpu, variant)) continue;
    tuning.choices.set(key, variant);
    applied++;
  }
  return applied;
}
