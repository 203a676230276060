// npm run bench:probe -- [--n 10000] [--dim 768] [--classes 7] [--epochs 200] [--reference-epochs EPOCHS]
// Times probe training on the CPU: KnoBo's Adam protocol (batch 64, best val epoch) and the full-batch L-BFGS,
// in TypeScript (WebAssembly kernel) and in PyTorch / scikit-learn (reference/eval_reference.py time) on the same
// features. --reference-epochs shortens PyTorch's Adam run (minutes per 20 epochs on a loaded 2-core machine).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SeededRandom } from '../src/eval/random.js';
import { trainAdam, trainLbfgs } from '../src/eval/train.js';
import { writeNpy } from '../src/io/npy.js';
import { flag, PYTHON, REPO, writeResult } from './common.js';

const argv = process.argv.slice(2);
const n = Number(flag(argv, 'n', '10000')),
  dim = Number(flag(argv, 'dim', '768')),
  classes = Number(flag(argv, 'classes', '7'));
const epochs = Number(flag(argv, 'epochs', '200')),
  valRows = Math.min(2000, n);
const referenceEpochs = Number(flag(argv, 'reference-epochs', String(epochs)));

// Unit-norm embeddings-like rows: noise plus a class direction, so the classes overlap a little.
const random = new SeededRandom(0);
const x = new Float32Array(n * dim),
  y = new Int32Array(n);
for (let i = 0; i < n; i++) {
  y[i] = i % classes;
  let norm = 0;
  for (let j = 0; j < dim; j++) {
    const v = random.next() - 0.5 + (j % classes === y[i] ? 0.05 : 0);
    x[i * dim + j] = v;
    norm += v * v;
  }
  for (let j = 0; j < dim; j++) x[i * dim + j]! /= Math.sqrt(norm);
}
const train = { x, y, n, dim },
  val = { x: x.subarray(0, valRows * dim), y: y.subarray(0, valRows), n: valRows, dim };

const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
console.error(`Adam, ${epochs} epochs over ${n} × ${dim} (${classes} classes), TypeScript ... (load ${load()})`);
let start = performance.now();
const adam = trainAdam(train, val, classes, { epochs });
const adamSeconds = (performance.now() - start) / 1000;
console.error(`L-BFGS, TypeScript ... (load ${load()})`);
start = performance.now();
const lbfgs = trainLbfgs(train, classes, { C: 1 });
const lbfgsSeconds = (performance.now() - start) / 1000;

const work = mkdtempSync(join(tmpdir(), 'whylesion-probe-bench-'));
writeFileSync(join(work, 'x.npy'), writeNpy([n, dim], x));
writeFileSync(join(work, 'y.npy'), writeNpy([n], Float32Array.from(y)));
console.error(`the same in PyTorch / scikit-learn ... (load ${load()})`);
const torch = JSON.parse(
  execFileSync(
    PYTHON,
    [
      join(REPO, 'reference/eval_reference.py'),
      'time',
      join(work, 'x.npy'),
      join(work, 'y.npy'),
      '--epochs',
      String(referenceEpochs),
      '--threads',
      String(cpus().length),
    ],
    { encoding: 'utf8' },
  )
    .trim()
    .split('\n')
    .pop()!,
);
rmSync(work, { recursive: true, force: true });

const lscpu = ((): Record<string, string> => {
  try {
    return Object.fromEntries(
      execFileSync('lscpu', { encoding: 'utf8' })
        .split('\n')
        .map((l) => l.split(/:\s+/))
        .filter((p) => p.length === 2 && /^(Model name|CPU\(s\)|Flags)$/.test(p[0]!))
        .map(([k, v]) => [k, v]),
    );
  } catch {
    return {};
  }
})();
console.log(`| task | TypeScript s | PyTorch / scikit-learn s |\n| --- | --- | --- |`);
console.log(
  `| Adam, batch 64, ${n} × ${dim}, ${classes} classes (+ val ${valRows} each epoch) | ${adamSeconds.toFixed(1)} (${epochs} epochs) | ${torch.adam_seconds.toFixed(1)} (${referenceEpochs} epochs, torch, ${torch.threads} threads) |`,
);
console.log(
  `| L-BFGS to convergence, C = 1 | ${lbfgsSeconds.toFixed(1)} (${lbfgs.iterations} iterations, loss ${lbfgs.loss.toFixed(4)}) | ${torch.lbfgs_seconds.toFixed(1)} (${torch.lbfgs_iterations} iterations, loss ${torch.lbfgs_loss.toFixed(4)}) |`,
);
console.log(`load average at the end: ${load()}`);
console.log(
  `wrote ${writeResult('probe-train', {
    date: new Date().toISOString(),
    machine: lscpu,
    node: process.version,
    n,
    dim,
    classes,
    epochs,
    referenceEpochs,
    loadAverageAtEnd: loadavg(),
    typescript: {
      adamSeconds,
      adamBestEpoch: adam.bestEpoch,
      lbfgsSeconds,
      lbfgsIterations: lbfgs.iterations,
      lbfgsLoss: lbfgs.loss,
    },
    reference: torch,
  })}`,
);
