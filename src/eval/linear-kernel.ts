import { LINEAR_WASM_BASE64 } from './linear-wasm.generated.js';

/**
 * The hot loops of probe training over one linear layer (weight [classes, dim] then bias [classes] in `params`):
 * scoring feature rows, accumulating the cross-entropy gradient, and the Adam update. Two implementations
 * with bit-identical results: plain JavaScript (the readable reference) and WebAssembly f64x2 SIMD
 * (wasm/linear.wat, several times faster), which runs the same operations in the same order.
 */
export interface LinearKernel {
  readonly name: TrainingKernel;
  readonly classes: number;
  readonly dim: number;
  /** Most rows one scoreRows / addGradient call takes. */
  readonly maxRows: number;
  /** Parameters, gradient and Adam moments: weight [classes, dim] then bias [classes] (views: read them, do not keep them across kernels). */
  readonly params: Float64Array;
  readonly gradient: Float64Array;
  /** Row indices for the next call, into the dataset it names. */
  readonly rows: Int32Array;
  /** scoreRows writes logits [count, classes] here; addGradient reads its coefficients [count, classes] from here. */
  readonly scores: Float64Array;
  /** scores[r, k] = bias[k] + x[rows[r]] · weight[k] for r < count. */
  scoreRows(dataset: number, count: number): void;
  /** gradient.weight[k] += Σ_r scores[r, k] · x[rows[r]] and gradient.bias[k] += Σ_r scores[r, k], row after row. */
  addGradient(dataset: number, count: number): void;
  /** One Adam step (β 0.9/0.999, ε 1e-8) from `gradient`, with the step's bias corrections. */
  adamStep(stepSize: number, correction2: number): void;
}

export type TrainingKernel = 'wasm' | 'js';

const BETA1 = 0.9,
  BETA2 = 0.999,
  EPS = 1e-8;

/** The WebAssembly kernel where the runtime has SIMD (Node, Deno, current browsers), else the JavaScript one. */
export function createLinearKernel(
  datasets: readonly Float32Array[],
  classes: number,
  dim: number,
  maxRows: number,
  name: TrainingKernel = 'wasm',
): LinearKernel {
  if (name === 'wasm' && wasmModule()) return new WasmLinearKernel(datasets, classes, dim, maxRows);
  return new JsLinearKernel(datasets, classes, dim, maxRows);
}

class JsLinearKernel implements LinearKernel {
  readonly name = 'js';
  readonly params: Float64Array;
  readonly gradient: Float64Array;
  readonly rows: Int32Array;
  readonly scores: Float64Array;
  private readonly m: Float64Array;
  private readonly v: Float64Array;

  constructor(
    private readonly datasets: readonly Float32Array[],
    readonly classes: number,
    readonly dim: number,
    readonly maxRows: number,
  ) {
    const size = classes * dim + classes;
    this.params = new Float64Array(size);
    this.gradient = new Float64Array(size);
    this.m = new Float64Array(size);
    this.v = new Float64Array(size);
    this.rows = new Int32Array(maxRows);
    this.scores = new Float64Array(maxRows * classes);
  }

  scoreRows(dataset: number, count: number): void {
    const { classes: K, dim: d, params, rows, scores } = this,
      x = this.datasets[dataset]!,
      P = K * d;
    for (let r = 0; r < count; r++) {
      const row = rows[r]! * d;
      for (let k = 0; k < K; k++) scores[r * K + k] = params[P + k]! + dotRows(x, row, params, k * d, d);
    }
  }

  addGradient(dataset: number, count: number): void {
    const { classes: K, dim: d, gradient, rows, scores } = this,
      x = this.datasets[dataset]!,
      P = K * d;
    for (let r = 0; r < count; r++) {
      const row = rows[r]! * d;
      for (let k = 0; k < K; k++) {
        const g = scores[r * K + k]!;
        gradient[P + k]! += g;
        addScaledRow(gradient, k * d, g, x, row, d);
      }
    }
  }

  adamStep(stepSize: number, correction2: number): void {
    const { params, gradient, m, v } = this;
    for (let p = 0; p < params.length; p++) {
      const g = gradient[p]!;
      m[p] = BETA1 * m[p]! + (1 - BETA1) * g;
      v[p] = BETA2 * v[p]! + (1 - BETA2) * g * g;
      params[p]! -= (stepSize * m[p]!) / (Math.sqrt(v[p]!) / correction2 + EPS);
    }
  }
}

interface LinearExports {
  memory: WebAssembly.Memory;
  scoreRows(x: number, rows: number, count: number, d: number, K: number, params: number, scores: number): void;
  addGradient(
    x: number,
    rows: number,
    count: number,
    d: number,
    K: number,
    coefficients: number,
    gradient: number,
  ): void;
  adamStep(
    params: number,
    gradient: number,
    m: number,
    v: number,
    pairs: number,
    beta1: number,
    oneMinusBeta1: number,
    beta2: number,
    oneMinusBeta2: number,
    stepSize: number,
    correction2: number,
    eps: number,
  ): void;
}

let compiled: WebAssembly.Module | null | undefined;

/** The compiled module, or null where WebAssembly or its SIMD is missing. Synchronous: the module is 1 KB. */
function wasmModule(): WebAssembly.Module | null {
  if (compiled !== undefined) return compiled;
  try {
    const bytes = Uint8Array.from(atob(LINEAR_WASM_BASE64), (c) => c.charCodeAt(0));
    compiled = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  } catch {
    compiled = null;
  }
  return compiled;
}

/** Datasets, parameters, gradient, moments, rows and scores laid out in one instance's memory. */
class WasmLinearKernel implements LinearKernel {
  readonly name = 'wasm';
  readonly params: Float64Array;
  readonly gradient: Float64Array;
  readonly rows: Int32Array;
  readonly scores: Float64Array;
  private readonly exports: LinearExports;
  private readonly datasetAt: number[] = [];
  private readonly at: { params: number; gradient: number; m: number; v: number; rows: number; scores: number };
  private readonly pairs: number;

  constructor(
    datasets: readonly Float32Array[],
    readonly classes: number,
    readonly dim: number,
    readonly maxRows: number,
  ) {
    const size = classes * dim + classes;
    // Adam runs on pairs: pad to an even count (the padding stays zero and never moves).
    this.pairs = Math.ceil(size / 2);
    let end = 0;
    const take = (bytes: number): number => {
      const start = end;
      end += Math.ceil(bytes / 16) * 16;
      return start;
    };
    for (const x of datasets) this.datasetAt.push(take(x.byteLength));
    const padded = this.pairs * 2 * 8;
    this.at = {
      params: take(padded),
      gradient: take(padded),
      m: take(padded),
      v: take(padded),
      rows: take(maxRows * 4),
      scores: take(maxRows * classes * 8),
    };
    this.exports = new WebAssembly.Instance(wasmModule()!).exports as unknown as LinearExports;
    const { memory } = this.exports;
    const pageBytes = 65536,
      pages = Math.ceil(end / pageBytes) - memory.buffer.byteLength / pageBytes;
    if (pages > 0) memory.grow(pages);
    const buffer = memory.buffer; // grown once, before any view: the views stay attached
    datasets.forEach((x, i) => {
      new Float32Array(buffer, this.datasetAt[i], x.length).set(x);
    });
    this.params = new Float64Array(buffer, this.at.params, size);
    this.gradient = new Float64Array(buffer, this.at.gradient, size);
    this.rows = new Int32Array(buffer, this.at.rows, maxRows);
    this.scores = new Float64Array(buffer, this.at.scores, maxRows * classes);
  }

  scoreRows(dataset: number, count: number): void {
    this.exports.scoreRows(
      this.datasetAt[dataset]!,
      this.at.rows,
      count,
      this.dim,
      this.classes,
      this.at.params,
      this.at.scores,
    );
  }

  addGradient(dataset: number, count: number): void {
    this.exports.addGradient(
      this.datasetAt[dataset]!,
      this.at.rows,
      count,
      this.dim,
      this.classes,
      this.at.scores,
      this.at.gradient,
    );
  }

  adamStep(stepSize: number, correction2: number): void {
    const { at } = this;
    this.exports.adamStep(
      at.params,
      at.gradient,
      at.m,
      at.v,
      this.pairs,
      BETA1,
      1 - BETA1,
      BETA2,
      1 - BETA2,
      stepSize,
      correction2,
      EPS,
    );
  }
}

/** Σ x[a + j] · w[b + j] for j < d, four independent sums (about 1.5× faster in V8 than one). */
export function dotRows(x: Float32Array, a: number, w: Float64Array, b: number, d: number): number {
  let s0 = 0,
    s1 = 0,
    s2 = 0,
    s3 = 0,
    j = 0;
  for (; j + 3 < d; j += 4) {
    s0 += x[a + j]! * w[b + j]!;
    s1 += x[a + j + 1]! * w[b + j + 1]!;
    s2 += x[a + j + 2]! * w[b + j + 2]!;
    s3 += x[a + j + 3]! * w[b + j + 3]!;
  }
  for (; j < d; j++) s0 += x[a + j]! * w[b + j]!;
  return s0 + s1 + s2 + s3;
}

/** out[b + j] += g · x[a + j] for j < d. */
function addScaledRow(out: Float64Array, b: number, g: number, x: Float32Array, a: number, d: number): void {
  let j = 0;
  for (; j + 3 < d; j += 4) {
    out[b + j]! += g * x[a + j]!;
    out[b + j + 1]! += g * x[a + j + 1]!;
    out[b + j + 2]! += g * x[a + j + 2]!;
    out[b + j + 3]! += g * x[a + j + 3]!;
  }
  for (; j < d; j++) out[b + j]! += g * x[a + j]!;
}
