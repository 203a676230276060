import {
  matmulLaunch,
  packedMatmulLaunch,
  scalarMatmulLaunch,
  SUBGROUP16_TILES,
  SUBGROUP4_TILES,
  SUBGROUP8_TILES,
  subgroupVariant,
  UNROLLED4_TILES,
  unrolledVariant,
  F32_IO,
  MATMUL_IOS,
  type SubgroupLanes,
  type MatmulIo,
  type MatmulLaunch,
} from './matmul/spec.js';
import type { KernelPolicy, KernelTuning, MatmulShape, MatmulVariant, WeightDtype } from './policy.js';
import { shaderFiles } from './shader.js';
import type { FloatDtype } from './operands.js';
import { WGSL_SOURCES } from './wgsl.generated.js';

export {
  adapterKind,
  subgroupSizes,
  KERNEL_FAMILIES,
  KernelPolicy,
  KernelTuning,
  shapeKey,
  type KernelFamily,
  type MatmulShape,
  type MatmulVariant,
  type WeightDtype,
} from './policy.js';
export { parseSubgroupVariant } from './matmul/spec.js';

/** Variants the tuner tries at 8 lanes (also at 16, beside the 16-lane ones); 4-lane ones below. */
const SUBGROUP_VARIANTS: MatmulVariant[] = [
  'subgroup-3x3',
  'subgroup-2x3',
  'subgroup-1x3',
  'subgroup-3x2',
  'subgroup-2x2',
  'subgroup-4x3',
];
/**
 * 16-lane tiles where subgroups have 16 lanes (llvmpipe at 512 bits): 16×32, 32×48, 32×32 and 16×48 (32,
 * 96, 64 and 48 accumulators, each one 16-lane register). The 8-lane tiles leave half of each 16-lane
 * vector idle there; the rule picks among them by M (subgroup16Variant).
 */
const SUBGROUP16_VARIANTS: MatmulVariant[] = ['subgroup16-1x2', 'subgroup16-2x3', 'subgroup16-2x2', 'subgroup16-1x3'];
/**
 * The rule's tile at 16 lanes by M: 16×32 for M ≤ 16 (prompts on their EOT rows, class tokens), 32×32 up to 1024
 * rows, 32×48 above. `whylesion tune` on the ViT-L/14 shapes (bench/README.md, fifth pass): 32×32 ran 2-24 % faster
 * than 16×32 at M = 257 and 2056 and beat 32×48 at 257, 32×48 was 5-12 % faster than 32×32 at 2056 (batch 8), and
 * 16×32 was fastest at M ≤ 16. The switch at 1024 rows lies between the two measured sizes. Each is one f32
 * pipeline (first compiles ~2, ~5 and ~10 s); a batch of one image compiles the first two only. With f16 X
 * (halved X loads) 32×48 also wins at M = 257: 86-90 against 102-103 ms summed over a block's four matmuls, two
 * rounds (bench/README.md, sixth pass). On Mesa 26 (26.1.6 with LLVM 19, Debian 13's backports) 32×48 wins at every
 * M above 16 with f32 X too: the tuner picked it for all five M = 256-257 shapes, and the image tower ran 2.84-2.96
 * against 3.27-3.38 s with 32×32, three alternating rounds; its first compile there takes ~0.3 s, not ~10
 * (bench/README.md, ninth pass). Mesa 25.1-25.3 were not measured and keep the older rule.
 */
function subgroup16Variant(policy: KernelPolicy, M: number, xDtype: FloatDtype): MatmulVariant {
  if (M <= 16) return 'subgroup16-1x2';
  const wideEverywhere = (policy.llvmpipeMesaMajor ?? 0) >= 26;
  return M <= 1024 && xDtype === 'f32' && !wideEverywhere ? 'subgroup16-2x2' : 'subgroup16-2x3';
}
/** 4-lane tiles where subgroups have 4 lanes (llvmpipe at 128 bits: ARM's NEON, CPUs without AVX). */
const SUBGROUP4_VARIANTS: MatmulVariant[] = [
  'subgroup4-4x4',
  'subgroup4-1x4',
  'subgroup4-2x2',
  'subgroup4-3x3',
  'subgroup4-2x4',
];
/** The spelled-out 4-lane tiles (SwiftShader: KernelPolicy.needsUnrolledKernels), for the tuner. */
const UNROLLED4_VARIANTS: MatmulVariant[] = UNROLLED4_TILES.map((t) => unrolledVariant(t.rows, t.cols));
/**
 * The rule's tile at 4 lanes: 4×16 for M ≤ 16, 16×16 above. On 128-bit llvmpipe they ran 2.8-3.5× (M = 257) and
 * 3.3× (M = 12) the block kernel's GFLOP/s, the best of the five tiles at each (bench/README.md, fifth pass).
 * Where the kernels are spelled out (SwiftShader), 4×32 and 32×48 (UNROLLED4_TILES says why).
 */
function subgroup4Variant(policy: KernelPolicy, M: number): MatmulVariant {
  if (policy.needsUnrolledKernels) return M > 16 ? 'unrolled4-8x12' : 'unrolled4-1x8';
  return M > 16 ? 'subgroup4-4x4' : 'subgroup4-1x4';
}
const PORTABLE_VARIANTS: MatmulVariant[] = ['block', 'tiled'];

/** The policy's measured kernel choices. */
export function tuningOf(policy: KernelPolicy): KernelTuning {
  return policy.tuning;
}

/**
 * Whether the 8-lane subgroup kernels (one 8-lane subgroup per workgroup; see Gpu.hasCpuSizedSubgroups: matmul,
 * attention, layernorm) run under this policy: the cpu-subgroup family on subgroups of 8-16 lanes.
 */
export function subgroupsOf8(policy: KernelPolicy): boolean {
  return policy.family === 'cpu-subgroup' && policy.subgroupLanes !== 4;
}

/** Whether the 4-lane subgroup kernels run: the cpu-subgroup family on 4-lane subgroups (llvmpipe at 128 bits). */
export function subgroupsOf4(policy: KernelPolicy): boolean {
  return policy.family === 'cpu-subgroup' && policy.subgroupLanes === 4;
}

/** The width of the attention and layernorm subgroup kernels under this policy (8, or 4), if it runs them. */
export function subgroupKernelLanes(policy: KernelPolicy): 4 | 8 | undefined {
  if (subgroupsOf8(policy)) return 8;
  return subgroupsOf4(policy) ? 4 : undefined;
}

/** Whether the 16-lane subgroup kernels run too: every subgroup has exactly 16 lanes (llvmpipe at 512 bits). */
export function subgroupsOf16(policy: KernelPolicy): boolean {
  return subgroupsOf8(policy) && policy.subgroupLanes === 16;
}

/**
 * The built-in rule, used until a measurement says otherwise: on CPU adapters with 16-lane subgroups
 * (llvmpipe at 512 bits) 16×32, 32×32 or 32×48 by M, X's dtype and Mesa's version (subgroup16Variant); with 8-lane ones the 24×24 subgroup tile, with fewer rows (8 or
 * 16) when M is that small (prompts on their EOT rows, class tokens), which measured 1.1-3× faster than 24
 * rows at M = 1-12 (tuner runs in bench/README.md); on hardware
 * GPUs the workgroup-memory tiled kernel (the usual GPU design; not measured here, as no GPU was
 * available: `whylesion tune` checks it); elsewhere (CPU adapters without subgroups, e.g. Deno on
 * lavapipe) the 4×4-block kernel, which measured ~2× the tiled one on lavapipe through Dawn.
 */
export function defaultMatmulVariant(policy: KernelPolicy, M: number, xDtype: FloatDtype = 'f32'): MatmulVariant {
  const family = policy.family;
  if (family === 'cpu-subgroup') {
    if (subgroupsOf4(policy)) return subgroup4Variant(policy, M);
    return subgroupsOf16(policy) ? subgroup16Variant(policy, M, xDtype) : `subgroup-${subgroup8Rows(M)}x3`;
  }
  return family === 'gpu' ? 'tiled' : 'block';
}

/** X rows per lane of the 8-lane rule tile (also matmul_packed.wgsl's): 8, 16 or 24 rows by M. */
export function subgroup8Rows(M: number): number {
  return Math.min(3, Math.max(1, Math.ceil(M / 8)));
}

export function matmulCandidates(policy: KernelPolicy, shape: MatmulShape): MatmulVariant[] {
  if (shape.K % 4 !== 0) return [];
  if (shape.wDtype === 'f16' && !policy.gpu.hasF16) return [];
  return [
    ...(subgroupsOf8(policy) ? SUBGROUP_VARIANTS : []),
    ...(subgroupsOf4(policy) ? (policy.needsUnrolledKernels ? UNROLLED4_VARIANTS : SUBGROUP4_VARIANTS) : []),
    ...(subgroupsOf16(policy) ? SUBGROUP16_VARIANTS : []),
    ...PORTABLE_VARIANTS,
  ];
}

/** Bump when the rule or matmul()'s launch changes without a shader or tile edit (saved choices then lapse). */
const LAUNCH_VERSION = 5;

const variantsOf = (lanes: SubgroupLanes, tiles: readonly { rows: number; cols: number }[]): MatmulVariant[] =>
  tiles.map((t) => subgroupVariant(lanes, t.rows, t.cols));

/** Every (kernel, defines, tile) matmul() can launch under this policy, whichever variant is asked for. */
export function launchableMatmuls(policy: KernelPolicy): MatmulLaunch[] {
  const dtypes = policy.gpu.hasF16 ? (['f32', 'f16'] as const) : (['f32'] as const);
  const variants: MatmulVariant[] = [
    ...PORTABLE_VARIANTS,
    ...(subgroupsOf8(policy) ? variantsOf(8, SUBGROUP8_TILES) : []),
    ...(subgroupsOf16(policy) ? variantsOf(16, SUBGROUP16_TILES) : []),
    ...(subgroupsOf4(policy) ? variantsOf(4, SUBGROUP4_TILES) : []),
    ...(subgroupsOf4(policy) ? UNROLLED4_VARIANTS : []),
  ];
  // The vec4 kernels also read and write f16 activations (matmul() with xDtype/yDtype f16).
  const ios: readonly MatmulIo[] = policy.gpu.hasF16 ? MATMUL_IOS : [F32_IO];
  const launches = (d: WeightDtype, v: MatmulVariant): MatmulLaunch[] => ios.map((io) => matmulLaunch(v, d, io));
  const packed =
    policy.matmulWeightLayout('f16', 4) === 'packed' && policy.gpu.hasF16
      ? [1, 2, 3].flatMap((rows) => ios.map((io) => packedMatmulLaunch(rows, io)))
      : [];
  return [...dtypes.flatMap((d) => [...variants.flatMap((v) => launches(d, v)), scalarMatmulLaunch(d)]), ...packed];
}

/** The shader files (includes too) of every matmul this policy can launch, sorted. */
export function matmulSourceFiles(
  policy: KernelPolicy,
  sources: Readonly<Record<string, string>> = WGSL_SOURCES,
): string[] {
  return [...new Set(launchableMatmuls(policy).flatMap((l) => shaderFiles(l.spec.shader, l.defines, sources)))].sort();
}

/**
 * Names the device and the matmul kernels' sources: a cached choice is only reused on the same adapter
 * and driver with the same kernels (an edit to any file a matmul this device runs includes invalidates it).
 */
export function tuningKey(policy: KernelPolicy, sources: Readonly<Record<string, string>> = WGSL_SOURCES): string {
  const info = policy.gpu.adapterInfo;
  const adapter =
    [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' / ') || 'unknown adapter';
  // The launches' tiles too, so that a geometry change in spec.ts also lapses saved choices.
  const launches = launchableMatmuls(policy).map(
    (l) => `${l.spec.kernel} ${JSON.stringify(l.defines)} ${l.tile.rows}x${l.tile.cols}`,
  );
  let hash = 0x811c9dc5;
  for (const text of [...matmulSourceFiles(policy, sources).map((name) => `${name}\0${sources[name]}`), ...launches]) {
    for (const ch of text) hash = Math.imul(hash ^ ch.charCodeAt(0), 0x01000193) >>> 0;
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
export function isUsableVariant(policy: KernelPolicy, variant: unknown): variant is MatmulVariant {
  if (variant === 'block' || variant === 'tiled') return true;
  if (typeof variant !== 'string') return false;
  if (variantsOf(8, SUBGROUP8_TILES).includes(variant as MatmulVariant)) return subgroupsOf8(policy);
  if (variantsOf(4, SUBGROUP4_TILES).includes(variant as MatmulVariant)) return subgroupsOf4(policy);
  if (UNROLLED4_VARIANTS.includes(variant as MatmulVariant)) return subgroupsOf4(policy);
  return variantsOf(16, SUBGROUP16_TILES).includes(variant as MatmulVariant) && subgroupsOf16(policy);
}

/** Applies a saved record's choices to this policy; returns how many were usable. */
export function applyTuningRecord(policy: KernelPolicy, record: Partial<TuningRecord>): number {
  const tuning = tuningOf(policy);
  let applied = 0;
  for (const [key, variant] of Object.entries(record.choices ?? {})) {
    if (!key.startsWith('matmul:') || !isUsableVariant(policy, variant)) continue;
    tuning.choices.set(key, variant);
    applied++;
  }
  return applied;
}
