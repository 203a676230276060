import type { Dispatch, Gpu } from '../runtime/gpu.js';
import { Scope } from './dispatch.js';
import { f16BitsToF32 } from './halves.js';
import type { KernelPolicy } from './policy.js';
import { matmul } from './matmul/index.js';
import {
  defaultMatmulVariant,
  matmulCandidates,
  shapeKey,
  tuningOf,
  type MatmulShape,
  type MatmulVariant,
} from './tuning.js';
import { present } from '../errors.js';

export interface CandidateResult {
  variant: MatmulVariant;
  /** Median wall time of one dispatch (ms), or undefined when the candidate failed. */
  ms?: number;
  /** Why the candidate was dropped (did not compile, wrong numbers). */
  error?: string;
}

export interface ShapeResult {
  key: string;
  shape: MatmulShape;
  /** The fastest correct candidate; undefined when none ran correctly (the built-in rule stays). */
  choice?: MatmulVariant;
  candidates: CandidateResult[];
}

export interface TuneOptions {
  /** Timed rounds per candidate (candidates alternate within a round, so drift hits all alike). */
  runs?: number;
  /** Kernels to try instead of all this device can run (each must be one it can run). */
  candidates?: readonly MatmulVariant[];
  /** Called after each shape with its result. */
  onShape?: (result: ShapeResult, index: number, total: number) => void;
}

/** Checked rows per candidate against a CPU product: both ends of M and the middle. */
const CHECK_ROWS = 3;
/** Largest relative difference from the CPU product a candidate may show (f32 sums over K ≤ 4096 stay ~1e-6). */
const TOLERANCE = 1e-4;
/** The same for f16 outputs, which are rounded to 11 significant bits. */
const HALF_TOLERANCE = 2e-3;
/** How much faster than the built-in rule's kernel another must measure to be chosen. */
const RULE_MARGIN = 0.1;
/** Each timed submission repeats a dispatch until it is about this long, so submit costs do not decide. */
const TARGET_SUBMIT_MS = 30;

/** Deterministic values in [-1, 1): the tuner's inputs, independent of Math.random. */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** f16 bit patterns of magnitude 2^-6..2^0 and their exact f32 values. */
function halfValues(n: number, seed: number): { bits: Uint16Array; exact: Float32Array } {
  const bits = new Uint16Array(n),
    exact = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const sign = s >>> 31,
      exponent = 9 + ((s >>> 10) % 6),
      mantissa = s & 0x3ff;
    bits[i] = (sign << 15) | (exponent << 10) | mantissa;
    exact[i] = (sign ? -1 : 1) * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return { bits, exact };
}

function checkRows(M: number): number[] {
  return [...new Set([0, Math.floor(M / 2), M - 1])].slice(0, CHECK_ROWS);
}

/** max |got − want| / max |want| over the checked rows. */
function rowsError(got: Float32Array, x: Float32Array, w: Float32Array, shape: MatmulShape, rows: number[]): number {
  const { N, K } = shape;
  let maxDiff = 0,
    maxWant = 0;
  for (const r of rows) {
    for (let n = 0; n < N; n++) {
      let want = 0;
      for (let k = 0; k < K; k++) want += x[r * K + k]! * w[n * K + k]!;
      maxDiff = Math.max(maxDiff, Math.abs(got[r * N + n]! - want));
      maxWant = Math.max(maxWant, Math.abs(want));
    }
  }
  return maxDiff / Math.max(maxWant, 1e-30);
}

/**
 * One dispatch's time (ms), averaged over `repeat` back to back: from GPU timestamps where the adapter has
 * them (wall time includes the submit and, on Dawn/Node, a polling JS thread that competes with CPU
 * adapters for cores), else wall time of one submission.
 */
async function timeDispatch(
  gpu: Gpu,
  label: string,
  dispatch: Dispatch,
  repeat: number,
  out: GPUBuffer,
): Promise<number> {
  const dispatches = new Array<Dispatch>(repeat).fill(dispatch);
  if (gpu.hasTimestamps) return (await gpu.profile(label, dispatches)).reduce((sum, t) => sum + t.ms, 0) / repeat;
  const t0 = performance.now();
  await gpu.run(label, dispatches, [{ buffer: out, bytes: 4 }]);
  return (performance.now() - t0) / repeat;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return present(s[Math.floor(s.length / 2)], 'median of no timings');
}

/**
 * Measures every matmul kernel this policy can run on each shape (random inputs of that shape, outputs
 * checked against a CPU product on a few rows), records the fastest correct one as the policy's choice
 * for the shape's key (see tuning.ts), and returns all measurements. Plans made before keep their kernels.
 */
export async function tuneMatmuls(
  policy: KernelPolicy,
  shapes: readonly MatmulShape[],
  options: TuneOptions = {},
): Promise<ShapeResult[]> {
  const runs = options.runs ?? 5;
  const results: ShapeResult[] = [];
  const unique = [...new Map(shapes.map((s) => [shapeKey(s), s])).values()];
  for (const [index, shape] of unique.entries()) {
    const result = await tuneShape(policy, shape, runs, options.candidates);
    if (result) {
      if (result.choice) tuningOf(policy).choices.set(result.key, result.choice);
      results.push(result);
      options.onShape?.(result, index, unique.length);
    }
  }
  return results;
}

async function tuneShape(
  policy: KernelPolicy,
  shape: MatmulShape,
  runs: number,
  only?: readonly MatmulVariant[],
): Promise<ShapeResult | undefined> {
  const gpu = policy.gpu;
  const runnable = matmulCandidates(policy, shape);
  if (runnable.length === 0) return undefined;
  const candidates = only ? [...only] : runnable;
  const { M, N, K, wDtype } = shape;
  const xDtype = shape.xDtype ?? 'f32',
    yDtype = shape.yDtype ?? 'f32';
  const key = shapeKey(shape);
  const scope = new Scope(policy);
  try {
    const halfX = xDtype === 'f16' ? halfValues(M * K, M * 31 + K) : undefined;
    const x = halfX ? halfX.exact : values(M * K, M * 31 + K);
    const half = wDtype === 'f16' ? halfValues(N * K, N * 17 + K) : undefined;
    const w = half ? half.exact : values(N * K, N * 17 + K).map((v) => v / Math.sqrt(K));
    const X = scope.storage('tune.x', halfX ? halfX.bits : x);
    const W = scope.storage('tune.w', half ? half.bits : w);
    const outBytes = yDtype === 'f16' ? 4 * Math.ceil((M * N) / 2) : 4 * M * N;
    const Y = scope.storage('tune.y', outBytes);
    const rows = checkRows(M);
    const timings = new Map<MatmulVariant, number[]>();
    const dispatches = new Map<MatmulVariant, { dispatch: Dispatch; repeat: number }>();
    const failed: CandidateResult[] = [];
    // Compile all candidates together (pipeline compilation dominates the first call).
    // (through .then, so that a candidate rejected synchronously fails alone)
    const made = await Promise.allSettled(
      candidates.map((variant) =>
        Promise.resolve().then(() =>
          matmul(scope, `tune ${key} ${variant}`, { x: X, w: W, y: Y, M, N, K, wDtype, xDtype, yDtype, variant }),
        ),
      ),
    );
    const poisoned = new Float32Array(outBytes / 4).fill(Number.NaN); // a kernel that skips outputs cannot pass on the previous one's
    for (const [i, variant] of candidates.entries()) {
      const m = made[i]!;
      if (m.status === 'rejected') {
        failed.push({ variant, error: String((m.reason as Error)?.message ?? m.reason) });
        continue;
      }
      try {
        gpu.write(Y, poisoned);
        const t0 = performance.now();
        const [bytes] = await gpu.run(`tune ${key} ${variant}`, [m.value], [{ buffer: Y, bytes: outBytes }]);
        const first = performance.now() - t0;
        const got = present(bytes, 'tuned output');
        const out = yDtype === 'f16' ? widened(new Uint16Array(got, 0, M * N)) : new Float32Array(got);
        const error = rowsError(out, x, w, shape, rows);
        if (!(error <= (yDtype === 'f16' ? HALF_TOLERANCE : TOLERANCE))) {
          failed.push({ variant, error: `relative error ${error.toExponential(1)} against the CPU product` });
          continue;
        }
        dispatches.set(variant, {
          dispatch: m.value,
          repeat: Math.max(1, Math.min(16, Math.round(TARGET_SUBMIT_MS / Math.max(first, 0.1)))),
        });
        timings.set(variant, []);
      } catch (e) {
        failed.push({ variant, error: (e as Error).message });
      }
    }
    for (let r = 0; r < runs; r++) {
      for (const [variant, { dispatch, repeat }] of dispatches)
        timings.get(variant)!.push(await timeDispatch(gpu, `tune ${key} ${variant}`, dispatch, repeat, Y));
    }
    const measured: CandidateResult[] = [...timings].map(([variant, ms]) => ({ variant, ms: median(ms) }));
    if (measured.length === 0) return { key, shape, candidates: failed };
    // The built-in rule's kernel stays unless another is clearly faster: near-ties are noise on a shared
    // CPU adapter (repeat tunings flipped between 24×24 and 16×24 tiles within ±10%), and every other
    // choice is one more pipeline to compile.
    const rule = measured.find((c) => c.variant === defaultMatmulVariant(policy, M, xDtype));
    const best = measured.reduce((a, b) => (b.ms! < a.ms! ? b : a));
    const choice = rule && best.ms! > (1 - RULE_MARGIN) * rule.ms! ? rule : best;
    return { key, shape, choice: choice.variant, candidates: [...measured, ...failed] };
  } finally {
    scope.destroy();
  }
}

function widened(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  f16BitsToF32(bits, out);
  return out;
}
