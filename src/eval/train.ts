import { accuracy, argmaxRows, confusionMatrix } from './metrics.js';
import { createLinearKernel, dotRows, type TrainingKernel, type LinearKernel } from './linear-kernel.js';
import { SeededRandom } from './random.js';

/** Rows of features, row-major [n, dim], with their class indices. */
export interface LabeledFeatures {
  x: Float32Array;
  y: Int32Array;
  n: number;
  dim: number;
}

/** logits = x · weightᵀ + bias; weight is row-major [classes, dim]. */
export interface LinearModel {
  weight: Float64Array;
  bias: Float64Array;
  classes: number;
  dim: number;
}

/** Logits [n, classes] of feature rows [n, dim]. */
export function linearScores(model: LinearModel, x: Float32Array, n: number): Float64Array {
  const { weight, bias, classes: K, dim: d } = model;
  const out = new Float64Array(n * K);
  for (let i = 0; i < n; i++) {
    const row = i * d;
    for (let k = 0; k < K; k++) {
      const w = k * d;
      out[i * K + k] = bias[k]! + dotRows(x, row, weight, w, d);
    }
  }
  return out;
}

/** Fraction of rows whose highest logit is their label. */
export function linearAccuracy(model: LinearModel, data: LabeledFeatures): number {
  return accuracy(
    confusionMatrix(data.y, argmaxRows(linearScores(model, data.x, data.n), model.classes), model.classes),
  );
}

export interface AdamOptions {
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  seed?: number;
  /** KnoBo's prior [classes, dim]: +1 yes, -1 no, 0 unknown; adds priorWeight · mean |tanh(W) − prior| to the loss. */
  prior?: Float32Array;
  priorWeight?: number;
  /** 'wasm' (default; the JavaScript kernel where WebAssembly SIMD is missing) or 'js': bit-identical results. */
  kernel?: TrainingKernel;
}

export interface AdamResult {
  model: LinearModel;
  /** 1-based epoch whose weights were kept (best validation accuracy, the earliest on ties). */
  bestEpoch: number;
  bestValAccuracy: number;
}

/** Rows a kernel scores or accumulates per call outside the mini-batches (validation, full-batch objective). */
const CHUNK_ROWS = 256;

/**
 * KnoBo's training (modules/cbm.py): a linear layer with bias, PyTorch's default initialisation
 * (uniform ±1/√dim), cross-entropy averaged over mini-batches of 64 drawn from a seeded shuffle each epoch,
 * Adam (lr 1e-3, β 0.9/0.999, ε 1e-8), 200 epochs, keeping the epoch with the best validation accuracy.
 */
export function trainAdam(
  train: LabeledFeatures,
  val: LabeledFeatures,
  classes: number,
  options: AdamOptions = {},
): AdamResult {
  const {
    epochs = 200,
    batchSize = 64,
    learningRate = 1e-3,
    seed = 0,
    prior,
    priorWeight = 1,
    kernel: kernelName,
  } = options;
  const d = train.dim,
    K = classes,
    P = K * d;
  const kernel = createLinearKernel([train.x, val.x], K, d, Math.max(batchSize, CHUNK_ROWS), kernelName);
  const { params, gradient, rows, scores } = kernel;
  const random = new SeededRandom(seed);
  const bound = 1 / Math.sqrt(d);
  for (let i = 0; i < params.length; i++) params[i] = (2 * random.next() - 1) * bound;
  const model: LinearModel = { weight: params.subarray(0, P), bias: params.subarray(P), classes: K, dim: d };
  let best: AdamResult = { model: copyModel(model), bestEpoch: 0, bestValAccuracy: -1 };
  const order = Int32Array.from({ length: train.n }, (_, i) => i);
  const { y } = train;
  const beta1 = 0.9,
    beta2 = 0.999;
  let step = 0;
  for (let epoch = 1; epoch <= epochs; epoch++) {
    random.shuffle(order);
    for (let start = 0; start < train.n; start += batchSize) {
      const count = Math.min(batchSize, train.n - start),
        scale = 1 / count;
      rows.set(order.subarray(start, start + count));
      kernel.scoreRows(0, count);
      // Softmax cross-entropy: the logits become the gradient coefficients (softmax − one-hot) / batch.
      for (let r = 0; r < count; r++) {
        const at = r * K,
          label = y[rows[r]!];
        let max = -Infinity;
        for (let k = 0; k < K; k++) if (scores[at + k]! > max) max = scores[at + k]!;
        let sum = 0;
        for (let k = 0; k < K; k++) sum += scores[at + k] = Math.exp(scores[at + k]! - max);
        for (let k = 0; k < K; k++) scores[at + k] = (scores[at + k]! / sum - (k === label ? 1 : 0)) * scale;
      }
      gradient.fill(0);
      kernel.addGradient(0, count);
      if (prior) {
        const c = priorWeight / P;
        for (let p = 0; p < P; p++) {
          const t = Math.tanh(params[p]!);
          gradient[p]! += c * Math.sign(t - prior[p]!) * (1 - t * t);
        }
      }
      step++;
      kernel.adamStep(learningRate / (1 - beta1 ** step), Math.sqrt(1 - beta2 ** step));
    }
    const valAccuracy = kernelAccuracy(kernel, 1, val);
    if (valAccuracy > best.bestValAccuracy)
      best = { model: copyModel(model), bestEpoch: epoch, bestValAccuracy: valAccuracy };
  }
  return best;
}

/** linearAccuracy of the kernel's parameters on its dataset `dataset`. */
function kernelAccuracy(kernel: LinearKernel, dataset: number, data: LabeledFeatures): number {
  const { rows, scores, classes: K } = kernel;
  let right = 0;
  for (let start = 0; start < data.n; start += kernel.maxRows) {
    const count = Math.min(kernel.maxRows, data.n - start);
    for (let r = 0; r < count; r++) rows[r] = start + r;
    kernel.scoreRows(dataset, count);
    for (let r = 0; r < count; r++) {
      let best = 0;
      for (let k = 1; k < K; k++) if (scores[r * K + k]! > scores[r * K + best]!) best = k;
      if (best === data.y[start + r]) right++;
    }
  }
  return data.n === 0 ? 0 : right / data.n;
}

function copyModel(model: LinearModel): LinearModel {
  return { ...model, weight: Float64Array.from(model.weight), bias: Float64Array.from(model.bias) };
}

/**
 * scikit-learn LogisticRegression's multinomial objective: Σ cross-entropy + ½/C · ‖W‖² (the bias is not
 * penalised). Returns the objective and writes its gradient (weight then bias) into `gradient` when given.
 */
export function logisticObjective(
  model: LinearModel,
  data: LabeledFeatures,
  C: number,
  gradient?: Float64Array,
  kernelName?: TrainingKernel,
): number {
  const kernel = createLinearKernel([data.x], model.classes, model.dim, CHUNK_ROWS, kernelName);
  kernel.params.set(model.weight);
  kernel.params.set(model.bias, model.weight.length);
  const f = kernelObjective(kernel, data, C, gradient !== undefined);
  gradient?.set(kernel.gradient);
  return f;
}

/** logisticObjective at the kernel's parameters over its dataset 0; the gradient lands in kernel.gradient. */
function kernelObjective(kernel: LinearKernel, data: LabeledFeatures, C: number, withGradient: boolean): number {
  const { params, gradient, rows, scores, classes: K, dim: d } = kernel;
  gradient.fill(0);
  let loss = 0;
  for (let start = 0; start < data.n; start += kernel.maxRows) {
    const count = Math.min(kernel.maxRows, data.n - start);
    for (let r = 0; r < count; r++) rows[r] = start + r;
    kernel.scoreRows(0, count);
    for (let r = 0; r < count; r++) {
      const at = r * K,
        label = data.y[start + r]!;
      let max = -Infinity;
      for (let k = 0; k < K; k++) if (scores[at + k]! > max) max = scores[at + k]!;
      let sum = 0;
      for (let k = 0; k < K; k++) sum += Math.exp(scores[at + k]! - max);
      loss += max + Math.log(sum) - scores[at + label]!;
      if (withGradient)
        for (let k = 0; k < K; k++) scores[at + k] = Math.exp(scores[at + k]! - max) / sum - (k === label ? 1 : 0);
    }
    if (withGradient) kernel.addGradient(0, count);
  }
  let norm = 0;
  for (let p = 0; p < K * d; p++) {
    norm += params[p]! * params[p]!;
    if (withGradient) gradient[p]! += params[p]! / C;
  }
  return loss + (0.5 / C) * norm;
}

export interface LbfgsOptions {
  /** Inverse L2 strength, as scikit-learn's C (default 1). */
  C?: number;
  maxIterations?: number;
  /** Stop when the largest gradient entry of the per-image objective is below this. */
  tolerance?: number;
  memory?: number;
  /** As AdamOptions.kernel. */
  kernel?: TrainingKernel;
}

export interface LbfgsResult {
  model: LinearModel;
  /** The objective at the solution (logisticObjective). */
  loss: number;
  iterations: number;
  converged: boolean;
}

/**
 * Full-batch multinomial logistic regression by L-BFGS (two-loop recursion, Armijo backtracking), from zero
 * weights: deterministic, one answer for one dataset and C.
 */
export function trainLbfgs(train: LabeledFeatures, classes: number, options: LbfgsOptions = {}): LbfgsResult {
  const { C = 1, maxIterations = 1000, tolerance = 1e-7, memory = 10, kernel: kernelName } = options;
  const d = train.dim,
    K = classes,
    size = K * d + K,
    scale = 1 / train.n;
  const at = (params: Float64Array): LinearModel => ({
    weight: params.subarray(0, K * d),
    bias: params.subarray(K * d),
    classes: K,
    dim: d,
  });
  const kernel = createLinearKernel([train.x], K, d, CHUNK_ROWS, kernelName);
  // The per-image objective keeps the gradient tolerance independent of the dataset size.
  const evaluate = (params: Float64Array, gradient: Float64Array): number => {
    kernel.params.set(params);
    const f = kernelObjective(kernel, train, C, true) * scale;
    gradient.set(kernel.gradient);
    for (let p = 0; p < size; p++) gradient[p]! *= scale;
    return f;
  };
  const dotProduct = (a: Float64Array, b: Float64Array): number => {
    let s = 0;
    for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
    return s;
  };
  const maxAbs = (a: Float64Array): number => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  let params = new Float64Array(size),
    gradient = new Float64Array(size);
  let f = evaluate(params, gradient);
  const steps: Float64Array[] = [],
    changes: Float64Array[] = [],
    rhos: number[] = [];
  const direction = new Float64Array(size),
    alphas = new Float64Array(memory);
  let iterations = 0,
    converged = maxAbs(gradient) < tolerance;
  while (!converged && iterations < maxIterations) {
    iterations++;
    // Two-loop recursion: direction = −H·gradient.
    direction.set(gradient);
    for (let i = steps.length - 1; i >= 0; i--) {
      alphas[i] = rhos[i]! * dotProduct(steps[i]!, direction);
      for (let p = 0; p < size; p++) direction[p]! -= alphas[i]! * changes[i]![p]!;
    }
    const last = steps.length - 1;
    const gamma =
      last >= 0
        ? 1 / (rhos[last]! * dotProduct(changes[last]!, changes[last]!))
        : 1 / Math.max(Math.sqrt(dotProduct(gradient, gradient)), 1e-12);
    for (let p = 0; p < size; p++) direction[p]! *= gamma;
    for (let i = 0; i < steps.length; i++) {
      const beta = rhos[i]! * dotProduct(changes[i]!, direction);
      for (let p = 0; p < size; p++) direction[p]! += steps[i]![p]! * (alphas[i]! - beta);
    }
    for (let p = 0; p < size; p++) direction[p] = -direction[p]!;
    let slope = dotProduct(gradient, direction);
    if (slope >= 0) {
      // not a descent direction: forget the curvature pairs and go down the gradient
      steps.length = changes.length = rhos.length = 0;
      for (let p = 0; p < size; p++) direction[p] = -gradient[p]!;
      slope = -dotProduct(gradient, gradient);
    }
    let t = 1,
      next = new Float64Array(size),
      nextGradient = new Float64Array(size),
      fNext = Infinity;
    for (let tries = 0; tries < 60; tries++, t *= 0.5) {
      for (let p = 0; p < size; p++) next[p] = params[p]! + t * direction[p]!;
      fNext = evaluate(next, nextGradient);
      if (fNext <= f + 1e-4 * t * slope) break;
    }
    if (!(fNext <= f)) break; // no decrease is possible at this precision: the minimum is reached
    const s = new Float64Array(size),
      change = new Float64Array(size);
    for (let p = 0; p < size; p++) {
      s[p] = next[p]! - params[p]!;
      change[p] = nextGradient[p]! - gradient[p]!;
    }
    const sy = dotProduct(s, change);
    if (sy > 1e-16) {
      if (steps.length === memory) {
        steps.shift();
        changes.shift();
        rhos.shift();
      }
      steps.push(s);
      changes.push(change);
      rhos.push(1 / sy);
    }
    const decrease = f - fNext;
    [params, next] = [next, params];
    [gradient, nextGradient] = [nextGradient, gradient];
    f = fNext;
    converged = maxAbs(gradient) < tolerance || decrease <= 1e-15 * Math.max(Math.abs(f), 1);
  }
  return { model: at(params), loss: f / scale, iterations, converged };
}
