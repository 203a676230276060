import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { evaluateMode, type EvalInputs, type EvalMode } from '../src/eval/evaluate.js';
import { accuracy, balancedAccuracy, confusionMatrix, recalls } from '../src/eval/metrics.js';
import { loadProbe, trainProbe } from '../src/eval/probe.js';
import { compareModels, formatComparison } from '../src/eval/compare.js';
import { renderReport } from '../src/eval/report.js';
import type { ModelIdentity } from '../src/io/identity.js';
import { FeatureCache } from '../src/eval/features.js';
import { readImageFolderDataset, readSplitPickle, sampleShots } from '../src/eval/splits.js';
import { linearAccuracy, logisticObjective, trainAdam, trainLbfgs, type LabeledFeatures } from '../src/eval/train.js';
import { parsePlainPickle } from '../src/io/pickle.js';
import { loadNpy, rng } from './helpers.js';

const SYNTH = new URL('fixtures/eval-synth/', import.meta.url);
const work = mkdtempSync(join(tmpdir(), 'whylesion-eval-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('metrics', () => {
  it('confusion, accuracy, recall and balanced accuracy of a hand-counted case', () => {
    // truth 0,0,0,1,1,2 ; predicted 0,0,1,1,1,0
    const m = confusionMatrix([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 1, 0], 3);
    expect(m).toEqual([
      [2, 1, 0],
      [0, 2, 0],
      [1, 0, 0],
    ]);
    expect(accuracy(m)).toBeCloseTo(4 / 6, 12);
    expect(recalls(m)).toEqual([2 / 3, 1, 0]);
    expect(balancedAccuracy(m)).toBeCloseTo((2 / 3 + 1 + 0) / 3, 12);
    const absent = confusionMatrix([0, 1], [0, 0], 3); // class 2 has no images: left out of the mean
    expect(recalls(absent)[2]).toBeNaN();
    expect(balancedAccuracy(absent)).toBeCloseTo(0.5, 12);
  });
});

/** Gaussian blobs: class k centred at 2·e_k in `dim` dimensions. */
function blobs(n: number, dim: number, classes: number, seed: number): LabeledFeatures {
  const r = rng(seed),
    x = new Float32Array(n * dim),
    y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % classes;
    for (let j = 0; j < dim; j++) x[i * dim + j] = r.normal() + (j === y[i] ? 2 : 0);
  }
  return { x, y, n, dim };
}

describe('solvers', () => {
  const data = blobs(120, 6, 3, 1);

  it("the logistic objective's gradient matches finite differences", () => {
    const model = {
      weight: Float64Array.from({ length: 18 }, (_, i) => Math.sin(i)),
      bias: Float64Array.from([0.1, -0.2, 0.3]),
      classes: 3,
      dim: 6,
    };
    const gradient = new Float64Array(21);
    logisticObjective(model, data, 0.5, gradient);
    const h = 1e-6;
    for (const p of [0, 7, 17, 18, 20]) {
      const target = p < 18 ? model.weight : model.bias,
        at = p < 18 ? p : p - 18;
      target[at]! += h;
      const up = logisticObjective(model, data, 0.5);
      target[at]! -= 2 * h;
      const down = logisticObjective(model, data, 0.5);
      target[at]! += h;
      expect(Math.abs((up - down) / (2 * h) - gradient[p]!)).toBeLessThan(1e-5 * Math.max(1, Math.abs(gradient[p]!)));
    }
  });

  it('L-BFGS reaches a stationary point: the one-dimensional, two-point case has a closed form', () => {
    // x = ±1 with labels 1/0, no bias benefit by symmetry: minimise 2·log(1 + e^(−2w)) ... over W = [w0, w1]
    // with ½‖W‖² (C = 1): the optimum has w1 − w0 = u where u solves u = 2·σ(−u)... checked by the gradient.
    const two: LabeledFeatures = { x: Float32Array.from([1, -1]), y: Int32Array.from([1, 0]), n: 2, dim: 1 };
    const { model, converged } = trainLbfgs(two, 2, { C: 1 });
    expect(converged).toBe(true);
    const u = model.weight[1]! - model.weight[0]!;
    // Stationarity of log(1+e^{-u}) twice plus ¼u² (W = ±u/2): u/2 = 2σ(−u).
    expect(Math.abs(u / 2 - 2 / (1 + Math.exp(u)))).toBeLessThan(1e-7);
    expect(Math.abs(model.bias[0]! - model.bias[1]!)).toBeLessThan(1e-7);
  });

  it('Adam: the same seed gives the same weights, another seed other weights; the best val epoch is kept', () => {
    const val = blobs(60, 6, 3, 2);
    const a = trainAdam(data, val, 3, { seed: 7, epochs: 300 });
    const b = trainAdam(data, val, 3, { seed: 7, epochs: 300 });
    const c = trainAdam(data, val, 3, { seed: 8, epochs: 300 });
    expect(Array.from(a.model.weight)).toEqual(Array.from(b.model.weight));
    expect(Array.from(a.model.weight)).not.toEqual(Array.from(c.model.weight));
    expect(a.bestEpoch).toBeGreaterThanOrEqual(1);
    expect(a.bestValAccuracy).toBeGreaterThan(0.6); // chance is 1/3
    expect(linearAccuracy(a.model, val)).toBe(a.bestValAccuracy); // the kept weights are the best epoch's
  });

  it('the KnoBo prior pulls the signs of the weights toward P', () => {
    const val = blobs(60, 6, 3, 2);
    const prior = Float32Array.from({ length: 18 }, (_, i) => (i % 2 === 0 ? 1 : -1));
    const agree = (w: Float64Array) => Array.from(w).filter((v, i) => Math.sign(v) === prior[i]).length;
    const without = trainAdam(data, val, 3, { seed: 1, epochs: 500 });
    const withPrior = trainAdam(data, val, 3, { seed: 1, epochs: 500, prior, priorWeight: 20 });
    expect(agree(withPrior.model.weight)).toBeGreaterThan(agree(without.model.weight));
    expect(agree(withPrior.model.weight)).toBeGreaterThanOrEqual(16);
  });
});

describe('the protocol against PyTorch + scikit-learn on the synthetic dataset (fixtures/eval-synth)', () => {
  const labels = JSON.parse(readFileSync(new URL('features/labels.json', SYNTH), 'utf8')) as {
    classes: string[];
    train: number[];
    val: number[];
    test: number[];
  };
  const reference = JSON.parse(readFileSync(new URL('reference.json', SYNTH), 'utf8'));
  const rows = (name: string): Float32Array[] => {
    const { shape, data } = loadNpy(new URL(`features/${name}.npy`, SYNTH));
    return Array.from({ length: shape[0]! }, (_, i) => data.slice(i * shape[1]!, (i + 1) * shape[1]!));
  };
  const promptClass = JSON.parse(readFileSync(new URL('features/prompts.json', SYNTH), 'utf8')) as number[];
  const promptRows = rows('prompts');
  const inputs: EvalInputs = {
    classes: labels.classes,
    train: { embeddings: rows('train'), labels: labels.train },
    val: { embeddings: rows('val'), labels: labels.val },
    test: { embeddings: rows('test'), labels: labels.test },
    prompts: labels.classes.map((_, k) => promptRows.filter((_, i) => promptClass[i] === k)),
    concepts: {
      texts: readFileSync(new URL('../assets/knobo/skin_PubMed.txt', import.meta.url), 'utf8')
        .split('\n')
        .filter((l) => l.trim()),
      embeddings: rows('concepts'),
    },
  };
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

  it('zero-shot accuracy equals the reference exactly', async () => {
    const { result } = await evaluateMode('zeroshot', inputs);
    expect(result.val_acc).toBeCloseTo(reference.zeroshot.val_acc, 9);
    expect(result.test_acc).toBeCloseTo(reference.zeroshot.test_acc, 9);
  });

  for (const mode of ['linear', 'concepts', 'knobo'] as EvalMode[]) {
    it(`${mode} with Adam: val and test accuracy (mean of 5 seeds) within 2 points of PyTorch's`, async () => {
      const ours = await Promise.all(
        [0, 1, 2, 3, 4].map(async (seed) => (await evaluateMode(mode, { ...inputs, seed })).result),
      );
      const theirs = reference.adam[mode] as { val_acc: number; test_acc: number }[];
      expect(Math.abs(mean(ours.map((r) => r.val_acc)) - mean(theirs.map((r) => r.val_acc)))).toBeLessThanOrEqual(2);
      expect(Math.abs(mean(ours.map((r) => r.test_acc)) - mean(theirs.map((r) => r.test_acc)))).toBeLessThanOrEqual(2);
      expect(ours[0]!.gap).toBeCloseTo(ours[0]!.val_acc - ours[0]!.test_acc, 9);
      expect(ours[0]!.average).toBeCloseTo((ours[0]!.val_acc + ours[0]!.test_acc) / 2, 9);
    });
  }

  for (const mode of ['linear', 'concepts'] as EvalMode[]) {
    it(`${mode} with L-BFGS: the objective within 1e-4 relative of scikit-learn's, the same accuracies`, async () => {
      const { result } = await evaluateMode(mode, { ...inputs, solver: 'lbfgs' });
      expect(Math.abs(result.loss! - reference.lbfgs[mode].loss) / reference.lbfgs[mode].loss).toBeLessThan(1e-4);
      expect(result.val_acc).toBeCloseTo(reference.lbfgs[mode].val_acc, 9);
      expect(result.test_acc).toBeCloseTo(reference.lbfgs[mode].test_acc, 9);
    });
  }

  it('a concept probe saves, loads and predicts the same; its contributions add up to the logit', async () => {
    const { probe } = await trainProbe({
      mode: 'knobo',
      classes: inputs.classes,
      train: inputs.train,
      val: inputs.val,
      concepts: inputs.concepts,
      epochs: 20,
    });
    const path = join(work, 'probe.json');
    writeFileSync(path, JSON.stringify(probe.file));
    const loaded = await loadProbe(path);
    const before = probe.predict(inputs.test.embeddings),
      after = loaded.predict(inputs.test.embeddings);
    expect(after.predictions).toEqual(before.predictions);
    const k = after.predictions[0]!;
    const parts = loaded.contributions(inputs.test.embeddings[0]!, k);
    const logit = parts.reduce((s, p) => s + p.contribution, 0) + loaded.file.bias[k]!;
    const logits = loaded.file.classes.map(
      (_, c) =>
        loaded.contributions(inputs.test.embeddings[0]!, c).reduce((s, p) => s + p.contribution, 0) +
        loaded.file.bias[c]!,
    );
    expect(Math.max(...logits)).toBeCloseTo(logit, 9);
    expect(parts[0]!.contribution).toBeGreaterThanOrEqual(parts[parts.length - 1]!.contribution);
  });

  it('the report is one self-contained HTML page', async () => {
    const results = await Promise.all(
      (['zeroshot', 'knobo'] as EvalMode[]).map(async (m) => (await evaluateMode(m, { ...inputs, epochs: 5 })).result),
    );
    const html = renderReport({
      dataset: 'synthetic <test>',
      classes: inputs.classes,
      models: [{ model: 'tiny <model>', identity: fakeIdentity('a'), results }],
      settings: { seed: 0 },
    });
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).not.toMatch(/(src|href)=["']?(https?:)?\/\//);
    expect(html).toContain('synthetic &#60;test&#62;');
    // the comparison chart, then two confusion matrices and the recall bars per mode
    expect(html.match(/<svg /g)?.length).toBe(1 + 6);
    expect(html).toContain('Concepts with the largest weight');
    expect(html).toContain(`weights ${fakeIdentity('a').weights}`);
  });

  it("several models: the comparison table and chart hold each one's accuracies; bar heights are the accuracies", async () => {
    const runFor = async (solver: 'lbfgs' | 'adam', seed: number) =>
      Promise.all(
        (['zeroshot', 'linear', 'knobo'] as EvalMode[]).map(
          async (m) => (await evaluateMode(m, { ...inputs, solver, seed, epochs: 5 })).result,
        ),
      );
    const runs = [
      { model: 'first/model', identity: fakeIdentity('a'), results: await runFor('lbfgs', 0) },
      {
        model: 'hf-hub:org/a-rather-long-model-name-that-must-wrap-in-the-chart',
        identity: fakeIdentity('b'),
        results: await runFor('adam', 1),
      },
    ];
    const comparison = compareModels(runs);
    expect(comparison.modes).toEqual(['zeroshot', 'linear']); // the card's two; knobo stays in each model's results
    // Neither of the card's modes ran: the comparison is of those that did.
    const knoboOnly = compareModels(
      runs.map((run) => ({ ...run, results: run.results.filter((r) => r.mode === 'knobo') })),
    );
    expect(knoboOnly.modes).toEqual(['knobo']);
    expect(knoboOnly.rows[1]?.accuracy.knobo?.out_of_domain).toBe(runs[1]?.results[2]?.test_acc);
    runs.forEach((run, i) => {
      for (const mode of ['zeroshot', 'linear'] as const) {
        const r = defined(run.results.find((x) => x.mode === mode));
        expect(comparison.rows[i]?.accuracy[mode]).toEqual({
          in_domain: r.val_acc,
          out_of_domain: r.test_acc,
          average: (r.val_acc + r.test_acc) / 2,
        });
      }
    });
    const table = formatComparison(comparison).split('\n');
    expect(table[0]).toMatch(/^\s+zero-shot\s+linear probe$/);
    expect(table[1]).toMatch(/^model\s+weights\s+dtype\s+in-domain\s+out-of-domain\s+average\s+in-domain/);
    const linear = defined(runs[1]?.results.find((x) => x.mode === 'linear'));
    expect(table[3]).toContain(`sha256:bbbbbbbb  f32`);
    expect(defined(table[3]).trim().split(/\s+/).slice(-3).map(Number)).toEqual(
      [linear.val_acc, linear.test_acc, linear.average].map((v) => Number(v.toFixed(1))),
    );
    const html = renderReport({ dataset: 'd', classes: inputs.classes, models: runs, settings: {} });
    const chart = html.slice(html.indexOf('<svg'), html.indexOf('</svg>'));
    const plot = Number(/data-plot-height="([\d.]+)"/.exec(chart)?.[1]);
    const gridY = (p: number) => Number(new RegExp(`data-percent="${p}"[^>]* y1="([\\d.]+)"`).exec(chart)?.[1]);
    expect(gridY(0) - gridY(100)).toBeCloseTo(plot, 9);
    const bars = [
      ...chart.matchAll(
        /<rect class="bar" data-model="(\d)" data-mode="(\w+)" data-domain="(\w+)" data-value="[^"]*" x="[^"]*" y="([\d.]+)" width="[^"]*" height="([\d.]+)"/g,
      ),
    ];
    expect(bars).toHaveLength(2 * 2 * 3); // per model, per compared mode, in-domain, out-of-domain and average
    for (const [, model, mode, domain, y, height] of bars) {
      const expected = defined(comparison.rows[Number(model)]?.accuracy[mode as EvalMode])[domain as 'in_domain'];
      expect((Number(height) / plot) * 100).toBeCloseTo(expected, 2);
      expect(Number(y) + Number(height)).toBeCloseTo(gridY(0), 2); // standing on the 0% line
    }
    expect(chart.match(/<text class="model"/g)).toHaveLength(2); // one group label per model
    expect(chart).toContain('>hf-hub:org/a-rather-long-<'); // wrapped at a '-', not cut
    expect(html).toContain(`weights ${fakeIdentity('b').weights}<br>config ${fakeIdentity('b').config}<br>dtype f32`);
  });
});

/** The value, or a failed test saying it was missing (instead of an unchecked index read). */
function defined<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('expected a value, got undefined');
  return value;
}

/** An identity with a recognisable hash, for report tests that load no model. */
function fakeIdentity(hex: string): ModelIdentity {
  return {
    weights: `sha256:${hex.repeat(64)}`,
    config: `sha256:${'c'.repeat(63)}${hex}`,
    dtype: 'f32',
    source: `/models/${hex}`,
  };
}

describe('splits', () => {
  it("reads KnoBo's split pickles with the safe reader (class counts as Python's pickle)", async () => {
    const val = await readSplitPickle(
      fileURLToPath(new URL('../assets/knobo/splits/HAM10000/class2images_val.p', import.meta.url)),
    );
    expect(Object.fromEntries([...val].map(([k, v]) => [k, v.length]))).toEqual({
      'actinic keratoses': 33,
      'basal cell carcinoma': 51,
      'benign keratosis-like lesions': 110,
      dermatofibroma: 11,
      'melanocytic nevi': 670,
      melanoma: 111,
      'vascular lesions': 14,
    });
    expect(val.get('melanoma')![0]).toMatch(/^HAM10000\/images\/ISIC_\d+\.jpg$/);
    const melanoma = await readSplitPickle(
      fileURLToPath(new URL('../assets/knobo/splits/Melanoma/class2images_train.p', import.meta.url)),
    );
    expect([...melanoma.keys()]).toEqual(['malignant', 'benign']); // KnoBo's "maliganant", as its priors and prompts spell it
    expect(melanoma.get('malignant')!.length).toBe(4105);
  });

  it('protocol-2 pickles (BINPUT, APPEND) parse; a global or a cut file is refused with one sentence', async () => {
    const protocol2 = Buffer.from('80027d710058010000006171015d7102580100000078710361732e', 'hex'); // {'a': ['x']}
    expect(parsePlainPickle(protocol2, 'p2')).toEqual(new Map([['a', ['x']]]));
    const withGlobal = Buffer.from('\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01.', 'latin1');
    expect(() => parsePlainPickle(withGlobal, 'evil.p')).toThrow(
      /evil\.p is not a pickle of plain data.*GLOBAL.*nothing in the file is executed/,
    );
    const cut = join(work, 'class2images_val.p');
    writeFileSync(
      cut,
      readFileSync(new URL('../assets/knobo/splits/HAM10000/class2images_val.p', import.meta.url)).subarray(0, 5000),
    );
    await expect(readSplitPickle(cut)).rejects.toThrow(UserError);
    await expect(readSplitPickle(cut)).rejects.toThrow(/class2images_val\.p .*ends in the middle/);
  });

  const folder = (layout: Record<string, Record<string, number>>): string => {
    const root = mkdtempSync(join(work, 'ds-'));
    for (const [split, classes] of Object.entries(layout)) {
      for (const [name, count] of Object.entries(classes)) {
        mkdirSync(join(root, split, name), { recursive: true });
        for (let i = 0; i < count; i++) writeFileSync(join(root, split, name, `${i}.png`), '');
      }
    }
    return root;
  };

  it('an ImageFolder dataset: classes from train, sorted; bad layouts fail with one sentence naming the folder or class', async () => {
    const good = await readImageFolderDataset(
      folder({ train: { b: 2, a: 3 }, val: { a: 1, b: 1 }, test: { a: 1, b: 2 } }),
    );
    expect(good.classes).toEqual(['a', 'b']);
    expect(good.splits.train.map((i) => i.label)).toEqual([0, 0, 0, 1, 1]);
    await expect(
      readImageFolderDataset(folder({ train: { a: 1, b: 0 }, val: { a: 1, b: 1 }, test: { a: 1, b: 1 } })),
    ).rejects.toThrow(/class folder .*train\/b has no images/);
    await expect(
      readImageFolderDataset(folder({ train: { a: 1, b: 1 }, val: { a: 1 }, test: { a: 1, b: 1 } })),
    ).rejects.toThrow(/val split has no images of class 'b'/);
    await expect(
      readImageFolderDataset(folder({ train: { a: 1 }, val: { a: 1, c: 1 }, test: { a: 1 } })),
    ).rejects.toThrow(/val split has class 'c', which train lacks/);
    await expect(readImageFolderDataset(folder({ train: { a: 1 }, val: { a: 1 } }))).rejects.toThrow(
      /has no test\/ folder/,
    );
  });

  it('few-shot sampling draws N per class, the same for the same seed', () => {
    const images = Array.from({ length: 30 }, (_, i) => ({ path: `${i}`, label: i % 3 }));
    const a = sampleShots(images, 3, 4, 1),
      b = sampleShots(images, 3, 4, 1),
      c = sampleShots(images, 3, 4, 2);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect([0, 1, 2].map((k) => a.filter((im) => im.label === k).length)).toEqual([4, 4, 4]);
    expect(sampleShots(images, 3, 50, 0).length).toBe(30);
  });
});

describe('feature cache', () => {
  it('keeps rows across opens, per model key, and drops a record cut short by a crash', async () => {
    const dir = join(work, 'cache');
    const a = await FeatureCache.open(dir, '{"model":"m1"}', 3);
    a.append([
      { hash: 'aa'.repeat(32), row: Float32Array.from([1, 2, 3]) },
      { hash: 'bb'.repeat(32), row: Float32Array.from([4, 5, 6]) },
    ]);
    appendFileSync(a.path, Buffer.alloc(20)); // half a record, as a kill during a write leaves
    // While one is open, the cache is locked: a second opener (here the same process) is refused, naming it.
    await expect(FeatureCache.open(dir, '{"model":"m1"}', 3)).rejects.toThrow(
      new RegExp(`is being written by whylesion PID ${process.pid} `),
    );
    a.close();
    const again = await FeatureCache.open(dir, '{"model":"m1"}', 3);
    expect(again.size).toBe(2);
    expect(Array.from(again.get('bb'.repeat(32))!)).toEqual([4, 5, 6]);
    expect(statSync(again.path).size).toBe(2 * (32 + 12 + 8)); // hash, row, check
    again.close();
    const other = await FeatureCache.open(dir, '{"model":"m2"}', 3);
    expect(other.size).toBe(0);
    other.close();
  });
});
