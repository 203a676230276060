import { DEFAULT_BOTTLENECK, loadConcepts } from '../concepts/knobo.js';
import { UserError, present } from '../errors.js';
import { evaluateMode } from '../eval/evaluate.js';
import { checkProbeModel, knoboPrior, loadProbe, PROBE_MODES } from '../eval/probe.js';
import type { ModelIdentity } from '../io/identity.js';
import { acquireLock } from '../io/lock.js';
import { parseCommand } from './args.js';
import { writeAtomic } from './corpus.js';
import { DATASET_OPTIONS, DATASET_USAGE, openDataset, parseModes, prepareInputs, trainingSettings } from './eval.js';
import { MODEL_USAGE } from './args.js';
import { refuseToOverwrite } from './outputs.js';
import { alignedTable, percent, type Scorer } from './scorer.js';

const USAGE = `
Usage: whylesion probe train DATASET --mode linear|concepts|knobo --out probe.json [options]

Trains a probe on DATASET's train split (choosing the epoch on val), prints its val and test accuracy and
writes it as JSON, for whylesion classify IMG --probe probe.json and explain IMG --probe probe.json.
  --mode MODE    linear (the image embedding), concepts (cosines with --bottleneck's questions) or knobo
                 (concepts with KnoBo's prior loss)
  --out FILE     where to write the probe (written whole or not at all; an existing file is kept unless --force)
  --force        overwrite an existing --out file
${DATASET_USAGE}
${MODEL_USAGE}`;

export async function probeCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h') {
    console.log(USAGE.trim());
    return;
  }
  if (sub !== 'train')
    throw new UserError(`probe needs a subcommand: whylesion probe train DATASET --mode linear --out probe.json.`);
  const parsed = parseCommand(
    'probe train',
    rest,
    { ...DATASET_OPTIONS, mode: { type: 'string' }, out: { type: 'string' }, force: { type: 'boolean' } },
    USAGE,
  );
  if (!parsed) return;
  const { values, positionals } = parsed;
  const [dataset] = positionals;
  if (positionals.length !== 1 || dataset === undefined)
    throw new UserError('probe train needs one DATASET; see whylesion probe --help.');
  if (!values.mode) throw new UserError(`probe train needs --mode ${PROBE_MODES.join('|')}.`);
  const [mode, ...more] = parseModes(values.mode, PROBE_MODES);
  if (mode === undefined) throw new UserError(`probe train needs --mode ${PROBE_MODES.join('|')}.`);
  if (more.length > 0) throw new UserError('probe train trains one --mode at a time.');
  if (!values.out) throw new UserError('probe train needs --out FILE.json for the probe.');
  await refuseToOverwrite(values.out, values, '--out');
  const settings = trainingSettings(values);
  const lock = acquireLock(values.out, `The probe ${values.out}`);
  try {
    await trainAndWrite(mode, dataset, values.out, values, settings);
  } finally {
    lock.release();
  }
}

async function trainAndWrite(
  mode: ReturnType<typeof parseModes>[number],
  datasetSpec: string,
  out: string,
  values: Parameters<typeof openDataset>[1] & { bottleneck?: string },
  settings: ReturnType<typeof trainingSettings>,
): Promise<void> {
  const dataset = await openDataset(datasetSpec, values);
  const concepts = mode === 'linear' ? undefined : await loadConcepts(values.bottleneck ?? DEFAULT_BOTTLENECK);
  if (mode === 'knobo') await knoboPrior(dataset.classes, concepts!);
  const inputs = await prepareInputs(dataset, values, { concepts }, settings);
  const { result, probe } = await evaluateMode(mode, inputs);
  probe!.file.training.dataset = dataset.name;
  probe!.file.modelIdentity = inputs.identity;
  await writeAtomic(out, [`${JSON.stringify(probe!.file)}\n`]);
  console.log(
    `${mode} probe on ${dataset.name} (${dataset.classes.length} classes, ${inputs.train.labels.length} training images): val ${result.val_acc.toFixed(1)}%, test ${result.test_acc.toFixed(1)}%${result.best_epoch ? `, epoch ${result.best_epoch}` : ''}; wrote ${out}`,
  );
}

/** classify IMG... --probe FILE: the probe's class probabilities per image (the K most probable with --top). */
export async function classifyProbeScorer(
  probePath: string,
  top: number | undefined,
): Promise<ProbeScorer<ProbeClassification>> {
  const probe = await loadProbe(probePath);
  return {
    checkModel: (model) => checkProbeModel(probe, model, probePath),
    raw: true,
    score: (image, row) => {
      const {
        probabilities: [p],
        labels: [prediction],
      } = probe.predict([row]);
      if (!p || prediction === undefined) throw new Error('Bug: the probe returned no row for one image.');
      const prob = (k: number): number => present(p[k], `probability of class ${k}`);
      const label = (k: number): string => present(probe.classes[k], `class ${k}`);
      const best = probe.classes
        .map((_, k) => k)
        .sort((a, b) => p[b]! - p[a]!)
        .slice(0, top ?? p.length);
      // Without --top, json keeps the probe's class order.
      const keep = top === undefined ? probe.classes.map((_, k) => k) : best;
      return {
        image,
        prediction,
        labels: keep.map(label),
        probs: keep.map(prob),
        best: best.map((k) => ({ label: label(k), prob: prob(k) })),
      };
    },
    table: (r) =>
      `${r.image}: ${r.prediction} (${probe.mode} probe)\n${alignedTable(
        ['class', 'probability'],
        r.best.map((b) => [b.label, percent(b.prob)]),
        [false, true],
      )}`,
    json: (r) => ({ image: r.image, labels: r.labels, probs: r.probs, prediction: r.prediction }),
    csvHeader: ['image', 'rank', 'label', 'probability'],
    csv: (r) => r.best.map((b, k) => [r.image, k + 1, b.label, b.prob]),
  };
}

/** A probe's scorer, with the check that the loaded model is the one it was trained on. */
export type ProbeScorer<R> = Scorer<R> & { checkModel(model: ModelIdentity): void };

interface ProbeClassification {
  image: string;
  prediction: string;
  labels: string[];
  probs: number[];
  best: { label: string; prob: number }[];
}

/** explain IMG... --probe FILE: for a concept probe, each concept's weight × similarity toward the predicted class. */
export async function explainProbeScorer(probePath: string, top: number): Promise<ProbeScorer<ProbeExplanation>> {
  const probe = await loadProbe(probePath);
  if (!probe.concepts)
    throw new UserError(
      `${probePath} is a linear probe, which has no concepts to explain with; train one with --mode concepts or knobo.`,
    );
  return {
    checkModel: (model) => checkProbeModel(probe, model, probePath),
    raw: true,
    score: (image, row) => {
      const {
        probabilities: [p],
        predictions: [k],
        labels: [prediction],
      } = probe.predict([row]);
      if (!p || k === undefined || prediction === undefined)
        throw new Error('Bug: the probe returned no row for one image.');
      return {
        image,
        prediction,
        probability: present(p[k], `probability of class ${k}`),
        bias: present(probe.file.bias[k], `bias of class ${k}`),
        concepts: probe.contributions(row, k).slice(0, top),
      };
    },
    table: (r) =>
      `${r.image}: ${r.prediction} (${(100 * r.probability).toFixed(1)}%); the ${r.concepts.length} concepts that add most to it (weight × similarity):\n` +
      alignedTable(
        ['contribution', 'weight', 'similarity', 'concept'],
        r.concepts.map((c) => [
          `${c.contribution >= 0 ? '+' : ''}${c.contribution.toFixed(4)}`,
          c.weight.toFixed(3),
          c.similarity.toFixed(4),
          c.concept,
        ]),
        [true, true, true, false],
      ),
    json: (r) => r,
    csvHeader: ['image', 'prediction', 'rank', 'concept', 'contribution', 'weight', 'similarity'],
    csv: (r) =>
      r.concepts.map((c, rank) => [r.image, r.prediction, rank + 1, c.concept, c.contribution, c.weight, c.similarity]),
  };
}

interface ProbeExplanation {
  image: string;
  prediction: string;
  probability: number;
  bias: number;
  concepts: { concept: string; similarity: number; weight: number; contribution: number }[];
}
