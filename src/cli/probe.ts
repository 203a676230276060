import { DEFAULT_BOTTLENECK, loadConcepts } from '../concepts/knobo.js';
import { UserError } from '../errors.js';
import { evaluateMode } from '../eval/evaluate.js';
import { knoboPrior, loadProbe, PROBE_MODES } from '../eval/probe.js';
import { parseCommand } from './args.js';
import { writeAtomic } from './corpus.js';
import { DATASET_OPTIONS, DATASET_USAGE, openDataset, parseModes, prepareInputs, trainingSettings } from './eval.js';
import { MODEL_USAGE } from './args.js';
import { checkReadable, loadModelFromArgs } from './load.js';

const USAGE = `
Usage: whylesion probe train DATASET --mode linear|concepts|knobo --out probe.json [options]

Trains a probe on DATASET's train split (choosing the epoch on val), prints its val and test accuracy and
writes it as JSON, for whylesion classify IMG --probe probe.json and explain IMG --probe probe.json.
  --mode MODE    linear (the image embedding), concepts (cosines with --bottleneck's questions) or knobo
                 (concepts with KnoBo's prior loss)
  --out FILE     where to write the probe (written whole or not at all)
${DATASET_USAGE}
${MODEL_USAGE}`;

export async function probeCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h') {
    console.log(USAGE.trim());
    return;
  }
  if (sub !== 'train') throw new UserError(`probe needs a subcommand: whylesion probe train DATASET --mode linear --out probe.json.`);
  const parsed = parseCommand('probe train', rest, { ...DATASET_OPTIONS, mode: { type: 'string' }, out: { type: 'string' } }, USAGE);
  if (!parsed) return;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UserError('probe train needs one DATASET; see whylesion probe --help.');
  if (!values.mode) throw new UserError(`probe train needs --mode ${PROBE_MODES.join('|')}.`);
  const [mode, ...more] = parseModes(values.mode, PROBE_MODES);
  if (more.length > 0) throw new UserError('probe train trains one --mode at a time.');
  if (!values.out) throw new UserError('probe train needs --out FILE.json for the probe.');
  const settings = trainingSettings(values);
  const dataset = await openDataset(positionals[0], values);
  const concepts = mode === 'linear' ? undefined : await loadConcepts(values.bottleneck ?? DEFAULT_BOTTLENECK);
  if (mode === 'knobo') await knoboPrior(dataset.classes, concepts!);
  const inputs = await prepareInputs(dataset, values, { concepts }, settings);
  const { result, probe } = await evaluateMode(mode, inputs);
  probe!.file.training.dataset = dataset.name;
  await writeAtomic(values.out, [`${JSON.stringify(probe!.file)}\n`]);
  console.log(`${mode} probe on ${dataset.name} (${dataset.classes.length} classes, ${inputs.train.labels.length} training images): val ${result.val_acc.toFixed(1)}%, test ${result.test_acc.toFixed(1)}%${result.best_epoch ? `, epoch ${result.best_epoch}` : ''}; wrote ${values.out}`);
}

interface ModelValues { model?: string; dtype?: string; vocab?: string; 'exif-rotate'?: boolean }

/** classify IMG... --probe FILE: the probe's class probabilities per image. */
export async function classifyWithProbe(images: string[], probePath: string, values: ModelValues & { json?: boolean }): Promise<void> {
  const probe = await loadProbe(probePath);
  await checkReadable(images, 'image');
  const model = await loadModelFromArgs(values);
  let predicted: ReturnType<typeof probe.predict>;
  try {
    predicted = probe.predict(await model.encodeImage(images));
  } finally {
    model.dispose();
  }
  if (values.json) {
    console.log(JSON.stringify(images.map((image, i) => ({ image, labels: probe.classes, probs: predicted.probabilities[i], prediction: predicted.labels[i] }))));
    return;
  }
  const width = Math.max(...probe.classes.map((c) => c.length));
  images.forEach((image, i) => {
    console.log(`${image}: ${predicted.labels[i]} (${probe.mode} probe)`);
    const p = predicted.probabilities[i];
    for (const k of probe.classes.map((_, k) => k).sort((a, b) => p[b] - p[a])) console.log(`  ${probe.classes[k].padEnd(width)}  ${(100 * p[k]).toFixed(2).padStart(6)}%`);
  });
}

/** explain IMG... --probe FILE: for a concept probe, each concept's weight × similarity toward the predicted class. */
export async function explainWithProbe(images: string[], probePath: string, values: ModelValues & { json?: boolean; top: number }): Promise<void> {
  const probe = await loadProbe(probePath);
  if (!probe.concepts) throw new UserError(`${probePath} is a linear probe, which has no concepts to explain with; train one with --mode concepts or knobo.`);
  await checkReadable(images, 'image');
  const model = await loadModelFromArgs(values);
  let embeddings: Float32Array[];
  try {
    embeddings = await model.encodeImage(images);
  } finally {
    model.dispose();
  }
  const predicted = probe.predict(embeddings);
  const results = images.map((image, i) => {
    const k = predicted.predictions[i];
    return { image, prediction: predicted.labels[i], probability: predicted.probabilities[i][k], bias: probe.file.bias[k], concepts: probe.contributions(embeddings[i], k).slice(0, values.top) };
  });
  if (values.json) {
    console.log(JSON.stringify(results));
    return;
  }
  for (const r of results) {
    console.log(`${r.image}: ${r.prediction} (${(100 * r.probability).toFixed(1)}%); the ${r.concepts.length} concepts that add most to it (weight × similarity):`);
    for (const c of r.concepts) console.log(`  ${c.contribution >= 0 ? '+' : ''}${c.contribution.toFixed(4)} = ${c.weight.toFixed(3)} × ${c.similarity.toFixed(4)}  ${c.concept}`);
  }
}
