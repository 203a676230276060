/**
 * Probe training's WebAssembly kernel on Deno, as npm users get it (the compiled dist/): it is the kernel Deno
 * runs, and it trains bit-identically to the JavaScript reference kernel.
 */
import { createLinearKernel } from '../../dist/src/eval/linear-kernel.js';
import { trainAdam, trainLbfgs } from '../../dist/src/index.js';
import { check, report } from './report.js';

await report(() => {
  const n = 150,
    dim = 9,
    classes = 3,
    x = new Float32Array(n * dim),
    y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % classes;
    for (let j = 0; j < dim; j++) x[i * dim + j] = Math.sin(i * 7 + j * 3) + (j % classes === y[i] ? 0.8 : 0);
  }
  const data = { x, y, n, dim };
  check('kernel', createLinearKernel([x], classes, dim, 64).name === 'wasm', 'Deno runs the WebAssembly SIMD kernel');
  const wasm = trainAdam(data, data, classes, { epochs: 20, seed: 3 }),
    js = trainAdam(data, data, classes, { epochs: 20, seed: 3, kernel: 'js' });
  const same =
    wasm.bestEpoch === js.bestEpoch &&
    wasm.model.weight.every((w, i) => w === js.model.weight[i]) &&
    wasm.model.bias.every((b, i) => b === js.model.bias[i]);
  check('adam', same, `best epoch ${wasm.bestEpoch} vs ${js.bestEpoch}, weights bit-identical: ${same}`);
  const a = trainLbfgs(data, classes),
    b = trainLbfgs(data, classes, { kernel: 'js' });
  check(
    'lbfgs',
    a.loss === b.loss && a.iterations === b.iterations,
    `loss ${a.loss} vs ${b.loss}, ${a.iterations} vs ${b.iterations} iterations`,
  );
});
