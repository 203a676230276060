import { readFile } from 'node:fs/promises';
import type { WhyLesionModel } from '../api/model.js';
import { dot, normalized } from '../api/model.js';
import { DEFAULT_BOTTLENECK, KNOBO_BOTTLENECKS, loadConcepts } from '../concepts/knobo.js';
import { UserError } from '../errors.js';
import { MODEL_OPTIONS, MODEL_USAGE, parseCommand, positiveInteger } from './args.js';
import { checkReadable, loadModelFromArgs } from './load.js';

const CLASSIFY_USAGE = `
Usage: whylesion classify IMG... (--labels "a,b,c" | --label A --label B ... | --probe FILE.json) [--json]

Zero-shot label probabilities per image: softmax over labels of logit_scale · cos(image, label).
  --labels LIST   comma-separated labels
  --label TEXT    one label (repeatable; may contain commas)
  --probe FILE    a probe from whylesion probe train: its class probabilities instead of labels
  --json          print [{"image", "labels", "probs"}, ...] in argument order
${MODEL_USAGE}`;

const ZEROSHOT_USAGE = `
Usage: whylesion zeroshot IMG... --classes FILE.json [--json]

Scores each class by the mean cosine similarity between the image and the class's prompts (prompt ensemble),
and reports the predicted class. FILE.json maps class -> [prompt, ...] (see examples/classes/).
  --json   print [{"image", "prediction", "scores": {class: score}}, ...]
${MODEL_USAGE}`;

const EXPLAIN_USAGE = `
Usage: whylesion explain IMG [--concepts FILE.txt|NAME | --probe FILE.json] [--top 10] [--json]

Ranks clinical concept questions by cosine similarity to the image: the "why" behind WhyLesionCLIP.
  --concepts  a text file with one concept per line, or a KnoBo skin bottleneck:
              ${KNOBO_BOTTLENECKS.join(', ')} (default ${DEFAULT_BOTTLENECK}; downloaded once and cached,
              or read from $WHYLESION_KNOBO_DIR)
  --probe F   a concept probe (probe train --mode concepts|knobo): each concept's weight × similarity
              toward the class the probe predicts
  --top N     how many to show (default 10)
  --json      print [{"image", "concepts": [{"concept", "similarity"}, ...]}]
${MODEL_USAGE}`;

async function withModel<T>(values: Parameters<typeof loadModelFromArgs>[0], work: (model: WhyLesionModel) => Promise<T>): Promise<T> {
  const model = await loadModelFromArgs(values);
  try {
    return await work(model);
  } finally {
    model.dispose();
  }
}

export async function classifyCommand(argv: string[]): Promise<void> {
  const parsed = parseCommand('classify', argv, { ...MODEL_OPTIONS, labels: { type: 'string' }, label: { type: 'string', multiple: true }, json: { type: 'boolean' }, probe: { type: 'string' } }, CLASSIFY_USAGE);
  if (!parsed) return;
  const { values, positionals: images } = parsed;
  const labels = [...(values.labels?.split(',') ?? []), ...(values.label ?? [])].map((l) => l.trim()).filter((l) => l.length > 0);
  if (images.length === 0) throw new UserError('classify needs at least one image; see whylesion classify --help.');
  if (values.probe) return (await import('./probe.js')).classifyWithProbe(images, values.probe, values);
  if (labels.length === 0) throw new UserError('classify needs labels: pass --labels "a,b,c" or --label A --label B.');
  await checkReadable(images, 'image');
  await withModel(values, async (model) => {
    const imageRows = await model.encodeImage(images);
    const probs = model.classify(imageRows, await model.encodeText(labels));
    if (values.json) {
      console.log(JSON.stringify(images.map((image, i) => ({ image, labels, probs: probs[i] }))));
      return;
    }
    for (const [i, image] of images.entries()) {
      console.log(image);
      const order = labels.map((_, j) => j).sort((a, b) => probs[i][b] - probs[i][a]);
      const width = Math.max(...labels.map((l) => l.length));
      for (const j of order) console.log(`  ${labels[j].padEnd(width)}  ${(100 * probs[i][j]).toFixed(2).padStart(6)}%  ${bar(probs[i][j])}`);
    }
  });
}

export async function zeroshotCommand(argv: string[]): Promise<void> {
  const parsed = parseCommand('zeroshot', argv, { ...MODEL_OPTIONS, classes: { type: 'string' }, json: { type: 'boolean' } }, ZEROSHOT_USAGE);
  if (!parsed) return;
  const { values, positionals: images } = parsed;
  if (images.length === 0) throw new UserError('zeroshot needs at least one image; see whylesion zeroshot --help.');
  if (!values.classes) throw new UserError('zeroshot needs --classes FILE.json mapping class -> prompts (see examples/classes/).');
  const classes = await readClasses(values.classes);
  await checkReadable(images, 'image');
  await withModel(values, async (model) => {
    const imageRows = (await model.encodeImage(images)).map(normalized);
    const names = Object.keys(classes);
    const prompts = await Promise.all(names.map((c) => model.encodeText(classes[c], { normalize: true })));
    const results = imageRows.map((image, i) => {
      const scores = Object.fromEntries(names.map((c, k) => [c, mean(prompts[k].map((p) => dot(image, p)))]));
      const prediction = names.reduce((best, c) => (scores[c] > scores[best] ? c : best), names[0]);
      return { image: images[i], prediction, scores };
    });
    if (values.json) {
      console.log(JSON.stringify(results));
      return;
    }
    for (const r of results) {
      console.log(`${r.image}: ${r.prediction}`);
      const width = Math.max(...names.map((n) => n.length));
      for (const c of [...names].sort((a, b) => r.scores[b] - r.scores[a])) console.log(`  ${c.padEnd(width)}  ${r.scores[c].toFixed(4)}`);
    }
  });
}

export async function explainCommand(argv: string[]): Promise<void> {
  const parsed = parseCommand('explain', argv, { ...MODEL_OPTIONS, concepts: { type: 'string' }, top: { type: 'string' }, json: { type: 'boolean' }, probe: { type: 'string' } }, EXPLAIN_USAGE);
  if (!parsed) return;
  const { values, positionals: images } = parsed;
  if (images.length === 0) throw new UserError('explain needs an image; see whylesion explain --help.');
  const top = values.top ? positiveInteger('top', values.top) : 10;
  if (values.probe) return (await import('./probe.js')).explainWithProbe(images, values.probe, { ...values, top });
  const concepts = await loadConcepts(values.concepts);
  await checkReadable(images, 'image');
  await withModel(values, async (model) => {
    const imageRows = (await model.encodeImage(images)).map(normalized);
    const conceptRows = await model.encodeText(concepts, { normalize: true });
    const results = imageRows.map((image, i) => ({
      image: images[i],
      concepts: concepts.map((concept, k) => ({ concept, similarity: dot(image, conceptRows[k]) }))
        .sort((a, b) => b.similarity - a.similarity).slice(0, top),
    }));
    if (values.json) {
      console.log(JSON.stringify(results));
      return;
    }
    for (const r of results) {
      console.log(`${r.image}: the ${r.concepts.length} concepts most similar to the image`);
      for (const [rank, c] of r.concepts.entries()) console.log(`  ${String(rank + 1).padStart(2)}. ${c.similarity.toFixed(4)}  ${c.concept}`);
    }
  });
}

async function readClasses(path: string): Promise<Record<string, string[]>> {
  let data: unknown;
  try {
    data = JSON.parse(await readFile(path, 'utf8'));
  } catch (cause) {
    throw new UserError(`Cannot read ${path} as JSON; it must map each class to a list of prompts, e.g. {"melanoma": ["a dermoscopic image of melanoma"]}.`, { cause });
  }
  const ok = typeof data === 'object' && data !== null && !Array.isArray(data) && Object.keys(data).length > 0 &&
    Object.values(data).every((v) => Array.isArray(v) && v.length > 0 && v.every((p) => typeof p === 'string'));
  if (!ok) throw new UserError(`${path} must map each class to a non-empty list of prompt strings, e.g. {"melanoma": ["a dermoscopic image of melanoma"]}.`);
  return data as Record<string, string[]>;
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const bar = (p: number): string => '█'.repeat(Math.round(p * 30));
