// npm run bench:eval-reference
// Embeds the synthetic dataset (test/fixtures/eval-synth/images) with the tiny open_clip checkpoint, exports the
// features to test/fixtures/eval-synth/features/, runs the PyTorch + scikit-learn reference of the protocol
// (reference/eval_reference.py) into test/fixtures/eval-synth/reference.json, and compares our modes.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareInputs, trainingSettings } from '../src/cli/eval.js';
import { loadConcepts } from '../src/concepts/knobo.js';
import { evaluateMode, type EvalMode } from '../src/eval/evaluate.js';
import { knoboPrior } from '../src/eval/probe.js';
import { readImageFolderDataset } from '../src/eval/splits.js';
import { writeNpy } from '../src/io/npy.js';
import { PYTHON, REPO, writeResult } from './common.js';

const root = join(REPO, 'test/fixtures/eval-synth');
const out = join(root, 'features');
mkdirSync(out, { recursive: true });
const dataset = await readImageFolderDataset(join(root, 'images'));
const concepts = await loadConcepts('PubMed');
const prompts = dataset.classes.map((c) => [c, `a dermoscopic image of ${c}`]);
const values = {
  model: join(REPO, 'test/fixtures/openclip-tiny/model'),
  cache: mkdtempSync(join(tmpdir(), 'whylesion-eval-ref-')),
};
const inputs = await prepareInputs(dataset, values, { concepts, prompts }, trainingSettings({}));
const stack = (rows: Float32Array[]): Uint8Array => {
  const flat = new Float32Array(rows.length * rows[0]!.length);
  rows.forEach((r, i) => {
    flat.set(r, i * r.length);
  });
  return writeNpy([rows.length, rows[0]!.length], flat);
};
for (const split of ['train', 'val', 'test'] as const)
  writeFileSync(join(out, `${split}.npy`), stack(inputs[split].embeddings));
writeFileSync(
  join(out, 'labels.json'),
  `${JSON.stringify({ classes: dataset.classes, concepts: 'PubMed', train: inputs.train.labels, val: inputs.val.labels, test: inputs.test.labels })}\n`,
);
writeFileSync(join(out, 'concepts.npy'), stack(inputs.concepts!.embeddings));
writeFileSync(join(out, 'prompts.npy'), stack(inputs.prompts!.flat()));
writeFileSync(join(out, 'prompts.json'), `${JSON.stringify(prompts.flatMap((p, k) => p.map(() => k)))}\n`);
writeFileSync(
  join(out, 'prior.npy'),
  writeNpy([dataset.classes.length, concepts.length], await knoboPrior(dataset.classes, concepts)),
);

console.error('running the PyTorch + scikit-learn reference ...');
execFileSync(
  PYTHON,
  [join(REPO, 'reference/eval_reference.py'), 'protocol', out, join(root, 'reference.json'), '--seeds', '5'],
  { stdio: 'inherit' },
);
const reference = JSON.parse(readFileSync(join(root, 'reference.json'), 'utf8'));

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const rows: Record<string, unknown>[] = [];
console.log(
  '| mode | solver | ours val | ours test | reference val | reference test |\n| --- | --- | --- | --- | --- | --- |',
);
for (const mode of ['zeroshot', 'linear', 'concepts', 'knobo'] as EvalMode[]) {
  if (mode === 'zeroshot') {
    const { result } = await evaluateMode(mode, inputs);
    rows.push({
      mode,
      solver: '-',
      ours: [result.val_acc, result.test_acc],
      reference: [reference.zeroshot.val_acc, reference.zeroshot.test_acc],
    });
    continue;
  }
  const ours = [];
  for (let seed = 0; seed < 5; seed++) ours.push((await evaluateMode(mode, { ...inputs, seed })).result);
  rows.push({
    mode,
    solver: 'adam (5 seeds, mean)',
    ours: [mean(ours.map((r) => r.val_acc)), mean(ours.map((r) => r.test_acc))],
    reference: [
      mean(reference.adam[mode].map((r: { val_acc: number }) => r.val_acc)),
      mean(reference.adam[mode].map((r: { test_acc: number }) => r.test_acc)),
    ],
  });
  if (mode !== 'knobo') {
    const { result } = await evaluateMode(mode, { ...inputs, solver: 'lbfgs' });
    rows.push({
      mode,
      solver: 'lbfgs',
      ours: [result.val_acc, result.test_acc],
      reference: [reference.lbfgs[mode].val_acc, reference.lbfgs[mode].test_acc],
      loss: result.loss,
      referenceLoss: reference.lbfgs[mode].loss,
      relativeLossDifference: (result.loss! - reference.lbfgs[mode].loss) / reference.lbfgs[mode].loss,
    });
  }
}
for (const r of rows) {
  const [ov, ot] = r.ours as number[],
    [rv, rt] = r.reference as number[];
  if (ov === undefined || ot === undefined || rv === undefined || rt === undefined)
    throw new Error('missing ov, ot, rv, rt');
  console.log(
    `| ${r.mode} | ${r.solver} | ${ov.toFixed(1)} | ${ot.toFixed(1)} | ${rv.toFixed(1)} | ${rt.toFixed(1)} |${r.loss !== undefined ? ` loss ${(r.loss as number).toFixed(6)} vs ${(r.referenceLoss as number).toFixed(6)} (rel ${(r.relativeLossDifference as number).toExponential(2)})` : ''}`,
  );
}
console.log(
  `wrote ${writeResult('eval-reference', { date: new Date().toISOString(), dataset: 'test/fixtures/eval-synth', versions: reference.versions, rows })}`,
);
