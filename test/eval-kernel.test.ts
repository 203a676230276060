import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { createLinearKernel } from '../src/eval/linear-kernel.js';
import { logisticObjective, trainAdam, trainLbfgs, type LabeledFeatures } from '../src/eval/train.js';
import { rng } from './helpers.js';

// The WebAssembly kernel runs the JavaScript reference's operations in the same order, so the two must agree
// bit for bit (toEqual on Float64Arrays). dim 13 is not a multiple of 4 (the SIMD loops' scalar tails run),
// 7 classes make an odd parameter count (Adam's padded pair), and 203 rows leave a short last mini-batch.
function blobs(n: number, dim: number, classes: number, seed: number): LabeledFeatures {
  const r = rng(seed),
    x = new Float32Array(n * dim),
    y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % classes;
    for (let j = 0; j < dim; j++) x[i * dim + j] = r.normal() + (j % classes === y[i] ? 1 : 0);
  }
  return { x, y, n, dim };
}

describe('probe-training kernels', () => {
  const train = blobs(203, 13, 7, 3),
    val = blobs(91, 13, 7, 4);

  it('the generated WebAssembly module is in sync with wasm/linear.wat, and Node runs it', () => {
    expect(() => execFileSync('node', ['scripts/build-wasm.mjs', '--check'], { stdio: 'pipe' })).not.toThrow();
    expect(createLinearKernel([train.x], 7, 13, 64).name).toBe('wasm');
    expect(createLinearKernel([train.x], 7, 13, 64, 'js').name).toBe('js');
  });

  it('Adam: WebAssembly and JavaScript give the same best epoch and bit-identical weights, with and without the prior', () => {
    const prior = Float32Array.from({ length: 7 * 13 }, (_, i) => (i % 3) - 1);
    const three = { ...train, y: train.y.map((c) => c % 3) },
      threeVal = { ...val, y: val.y.map((c) => c % 3) };
    // 7 classes: four at a time, then the overlapping last block; 3 classes: one at a time.
    for (const [data, check, classes, extra] of [
      [train, val, 7, {}],
      [train, val, 7, { prior, priorWeight: 5 }],
      [three, threeVal, 3, {}],
    ] as const) {
      const wasm = trainAdam(data, check, classes, { seed: 11, epochs: 40, ...extra });
      const js = trainAdam(data, check, classes, { seed: 11, epochs: 40, kernel: 'js', ...extra });
      expect(wasm.bestEpoch).toBeGreaterThan(1);
      expect(wasm.bestEpoch).toBe(js.bestEpoch);
      expect(wasm.bestValAccuracy).toBe(js.bestValAccuracy);
      expect(wasm.model.weight).toEqual(js.model.weight);
      expect(wasm.model.bias).toEqual(js.model.bias);
    }
  });

  it('L-BFGS and the logistic objective: WebAssembly and JavaScript agree bit for bit', () => {
    const wasm = trainLbfgs(train, 7, { C: 0.5 }),
      js = trainLbfgs(train, 7, { C: 0.5, kernel: 'js' });
    expect(wasm.iterations).toBeGreaterThan(5);
    expect(wasm.iterations).toBe(js.iterations);
    expect(wasm.loss).toBe(js.loss);
    expect(wasm.model.weight).toEqual(js.model.weight);
    const gw = new Float64Array(7 * 14),
      gj = new Float64Array(7 * 14);
    expect(logisticObjective(wasm.model, val, 2, gw)).toBe(logisticObjective(wasm.model, val, 2, gj, 'js'));
    expect(gw).toEqual(gj);
  });

  it('the objective matches a direct float64 evaluation of Σ cross-entropy + ½/C‖W‖²', () => {
    const r = rng(9),
      K = 7,
      d = 13;
    const model = {
      weight: Float64Array.from({ length: K * d }, () => r.normal() * 0.3),
      bias: Float64Array.from({ length: K }, () => r.normal()),
      classes: K,
      dim: d,
    };
    let expected = 0;
    for (let i = 0; i < val.n; i++) {
      const z = Array.from(
        { length: K },
        (_, k) =>
          model.bias[k]! +
          Array.from({ length: d }, (_, j) => val.x[i * d + j]! * model.weight[k * d + j]!).reduce((a, b) => a + b, 0),
      );
      expected += Math.log(z.reduce((a, b) => a + Math.exp(b), 0)) - z[val.y[i]!]!;
    }
    expected += (0.5 / 3) * model.weight.reduce((a, w) => a + w * w, 0);
    expect(Math.abs(logisticObjective(model, val, 3) - expected)).toBeLessThan(1e-10 * Math.abs(expected));
  });
});
