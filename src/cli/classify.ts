import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import type { WhyLesionModel } from '../api/model.js';
import { dot, normalized, softmax } from '../api/model.js';
import { DEFAULT_BOTTLENECK, KNOBO_BOTTLENECKS, loadConcepts } from '../concepts/knobo.js';
import { UserError, present } from '../errors.js';
import { MODEL_OPTIONS, MODEL_USAGE, parseCommand, positiveInteger } from './args.js';
import {
  BATCH_OPTIONS,
  BATCH_USAGE,
  batchSize,
  encodeImageBatch,
  finishSkipped,
  listImages,
  Progress,
} from './images.js';
import { SUPPORTED_FORMATS } from '../image/index.js';
import { loadModelFromArgs } from './load.js';
import { alignedTable, percent, type Scorer } from './scorer.js';
import { StatusLine } from './status.js';
import { defaultTextCacheDir, TextCache } from '../eval/text-cache.js';

const OUTPUT_OPTIONS = {
  ...MODEL_OPTIONS,
  ...BATCH_OPTIONS,
  format: { type: 'string' },
  json: { type: 'boolean' },
  top: { type: 'string' },
  'no-cache': { type: 'boolean' },
} as const;

const INPUT_USAGE = `IMG may be image files, folders (searched recursively) and globs ("scans/**/*.jpg"), taken in batches:
results stream out as each batch finishes, in argument order (a folder's or glob's files sorted).`;

const OUTPUT_USAGE = `  --format F      table (default), json (one array at the end), jsonl (one object per image, streamed)
                  or csv (one row per image and rank, streamed); --json is --format json
  --top K         keep the K best per image, best first
  --no-cache      encode the labels/prompts/concepts afresh, without the text-embedding cache
                  ($WHYLESION_TEXT_CACHE, else ~/.cache/whylesion/texts; kept per model identity)
${BATCH_USAGE}`;

const LABEL_USAGE = `  --labels LIST   comma-separated labels, or @FILE with one label a line
  --label TEXT    one label (repeatable; may contain commas)`;

const CLASSIFY_USAGE = `
Usage: whylesion classify IMG... (--labels "a,b,c" | --labels @labels.txt | --label A ... | --probe FILE.json)
                          [--template T] [--format table|json|jsonl|csv] [--top K] [--batch 16] [--quiet] [--strict]

Zero-shot label probabilities per image: softmax over labels of logit_scale · cos(image, label).
${INPUT_USAGE}
${LABEL_USAGE}
  --template T    encode each label as T with {} replaced by the label, e.g. "a dermoscopic image of {}"
  --probe FILE    a probe from whylesion probe train: its class probabilities instead of labels
${OUTPUT_USAGE}
json/jsonl rows: {"image", "labels", "probs"} (labels in the given order, or the top K best first; with
--probe also "prediction"); csv: image,rank,label,probability.
${MODEL_USAGE}`;

const ZEROSHOT_USAGE = `
Usage: whylesion zeroshot IMG... (--classes FILE.json | --labels LIST|@FILE | --label A ...) [--template T]...
                          [--ensemble score|embedding] [--format table|json|jsonl|csv] [--top K] ...

Predicts a class per image from several prompts per class (a prompt ensemble).
${INPUT_USAGE}
  --classes FILE.json  maps class -> [prompt, ...] (see examples/classes/)
  --labels LIST        class names, comma-separated or @FILE with one a line; each class's prompt is its name
  --label TEXT         one class name (repeatable; may contain commas)
  --template T         (repeatable) each class's prompts become every T with {} replaced by each prompt
                       (or class name), e.g. --template "a dermoscopic image of {}" --template "{}, dermoscopy"
  --ensemble score     (default; the model card's) a class's score is the mean cosine between the image and
                       the class's prompts
  --ensemble embedding (open_clip's) a class's score is the cosine between the image and the mean of its
                       normalized prompt embeddings, renormalized
Both report probabilities too: softmax over classes of logit_scale · score.
${OUTPUT_USAGE}
json/jsonl rows: {"image", "prediction", "scores": {class: score}, "probs": {class: probability}};
csv: image,rank,class,score,probability.
${MODEL_USAGE}`;

const EXPLAIN_USAGE = `
Usage: whylesion explain IMG... [--concepts FILE.txt|NAME | --probe FILE.json] [--top 10] [--format table|json|jsonl|csv] ...

Ranks clinical concept questions by cosine similarity to the image: the "why" behind WhyLesionCLIP.
${INPUT_USAGE}
  --concepts  a text file with one concept per line, or a KnoBo skin bottleneck:
              ${KNOBO_BOTTLENECKS.join(', ')} (default ${DEFAULT_BOTTLENECK}; bundled with whylesion,
              or read from $WHYLESION_KNOBO_DIR)
  --probe F   a concept probe (probe train --mode concepts|knobo): each concept's weight × similarity
              toward the class the probe predicts
${OUTPUT_USAGE.replace('--top K         keep the K best per image, best first', '--top K         how many concepts to keep per image, most similar first (default 10)')}
json/jsonl rows: {"image", "concepts": [{"concept", "similarity"}, ...]}; csv: image,rank,concept,similarity.
With --probe: {"image", "prediction", "probability", "bias", "concepts": [{"concept", "similarity", "weight",
"contribution"}, ...]}; csv: image,prediction,rank,concept,contribution,weight,similarity.
${MODEL_USAGE}`;

interface Values {
  model?: string;
  dtype?: string;
  vocab?: string;
  'exif-rotate'?: boolean;
  kernels?: string;
  batch?: string;
  quiet?: boolean;
  strict?: boolean;
  format?: string;
  json?: boolean;
  top?: string;
  'no-cache'?: boolean;
}

/** Unit text embeddings through the on-disk text cache (none with --no-cache). */
async function textEncoder(
  model: WhyLesionModel,
  values: Values,
): Promise<(texts: readonly string[]) => Promise<Float32Array[]>> {
  const cache = await TextCache.open(values['no-cache'] ? undefined : defaultTextCacheDir(), model);
  return (texts) => cache.encode(model, texts, { normalize: true });
}

export async function classifyCommand(argv: string[]): Promise<void> {
  const parsed = parseCommand(
    'classify',
    argv,
    {
      ...OUTPUT_OPTIONS,
      labels: { type: 'string' },
      label: { type: 'string', multiple: true },
      template: { type: 'string', multiple: true },
      probe: { type: 'string' },
    },
    CLASSIFY_USAGE,
  );
  if (!parsed) return;
  const { values, positionals } = parsed;
  if (positionals.length === 0)
    throw new UserError('classify needs at least one image, folder or glob; see whylesion classify --help.');
  if (values.probe) {
    if (values.labels !== undefined || values.label !== undefined || values.template !== undefined)
      throw new UserError('--probe brings its own classes; pass it without --labels, --label or --template.');
    const scorer = await (await import('./probe.js')).classifyProbeScorer(
      values.probe,
      values.top === undefined ? undefined : positiveInteger('top', values.top),
    );
    return runOverImages('classified', positionals, values, false, async (model) => {
      scorer.checkModel(model.identity);
      return scorer;
    });
  }
  const labels = await readLabels(values.labels, values.label);
  if (labels.length === 0)
    throw new UserError('classify needs labels: pass --labels "a,b,c", --labels @labels.txt or --label A --label B.');
  if ((values.template?.length ?? 0) > 1)
    throw new UserError(
      'classify takes one --template; for an ensemble of templates use whylesion zeroshot --labels ... --template ... --template ....',
    );
  const prompts = applyTemplates(labels, values.template);
  const top = values.top === undefined ? labels.length : positiveInteger('top', values.top);
  await runOverImages('classified', positionals, values, true, async (model, status) => {
    status.phase(`encoding ${prompts.length} label${prompts.length === 1 ? '' : 's'}`);
    const texts = await (await textEncoder(model, values))(prompts);
    return {
      score: (image, row) => {
        const [probs] = model.classify([row], texts);
        if (!probs) throw new Error('Bug: classify returned no row for one image.');
        const prob = (j: number): number => present(probs[j], `probability of label ${j}`);
        const label = (j: number): string => present(labels[j], `label ${j}`);
        const best = labels
          .map((_, j) => j)
          .sort((a, b) => probs[b]! - probs[a]!)
          .slice(0, top);
        // Without --top, json keeps the labels in the order they were given.
        const keep = values.top === undefined ? labels.map((_, j) => j) : best;
        return {
          image,
          labels: keep.map(label),
          probs: keep.map(prob),
          best: best.map((j) => ({ label: label(j), prob: prob(j) })),
        };
      },
      table: (r) =>
        `${r.image}\n${alignedTable(
          ['label', 'probability', ''],
          r.best.map((b) => [b.label, percent(b.prob), bar(b.prob)]),
          [false, true, false],
        )}`,
      json: (r) => ({ image: r.image, labels: r.labels, probs: r.probs }),
      csvHeader: ['image', 'rank', 'label', 'probability'],
      csv: (r) => r.best.map((b, k) => [r.image, k + 1, b.label, b.prob]),
    };
  });
}

export async function zeroshotCommand(argv: string[]): Promise<void> {
  const parsed = parseCommand(
    'zeroshot',
    argv,
    {
      ...OUTPUT_OPTIONS,
      classes: { type: 'string' },
      labels: { type: 'string' },
      label: { type: 'string', multiple: true },
      template: { type: 'string', multiple: true },
      ensemble: { type: 'string' },
    },
    ZEROSHOT_USAGE,
  );
  if (!parsed) return;
  const { values, positionals } = parsed;
  if (positionals.length === 0)
    throw new UserError('zeroshot needs at least one image, folder or glob; see whylesion zeroshot --help.');
  const ensemble = values.ensemble ?? 'score';
  if (ensemble !== 'score' && ensemble !== 'embedding')
    throw new UserError(
      `--ensemble ${ensemble} is not score (the model card's mean cosine) or embedding (open_clip's mean prompt embedding).`,
    );
  const named = values.labels !== undefined || values.label !== undefined;
  if (values.classes && named)
    throw new UserError('Pass either --classes FILE.json or class names (--labels/--label), not both.');
  let classes: Record<string, string[]>;
  if (values.classes) classes = await readClasses(values.classes);
  else if (named)
    classes = Object.fromEntries((await readLabels(values.labels, values.label)).map((name) => [name, [name]]));
  else
    throw new UserError(
      'zeroshot needs --classes FILE.json mapping class -> prompts (see examples/classes/), or class names with --labels.',
    );
  const names = Object.keys(classes);
  if (names.length === 0) throw new UserError('zeroshot needs at least one class name.');
  const top = values.top === undefined ? names.length : positiveInteger('top', values.top);
  await runOverImages('classified', positionals, values, true, async (model, status) => {
    const count = names.reduce((sum, c) => sum + applyTemplates(classes[c]!, values.template).length, 0);
    status.phase(
      `encoding ${count} prompt${count === 1 ? '' : 's'} of ${names.length} class${names.length === 1 ? '' : 'es'}`,
    );
    const encode = await textEncoder(model, values);
    const prompts: Float32Array[][] = [];
    for (const c of names) prompts.push(await encode(applyTemplates(classes[c]!, values.template)));
    const classRows = ensemble === 'embedding' ? prompts.map(meanEmbedding) : undefined;
    return {
      score: (image, row) => {
        const scores = names.map((_, k) =>
          classRows ? dot(row, classRows[k]!) : mean(prompts[k]!.map((p) => dot(row, p))),
        );
        const probs = softmax(scores.map((s) => model.logitScale * s));
        const best = names
          .map((_, k) => k)
          .sort((a, b) => scores[b]! - scores[a]!)
          .slice(0, top);
        return {
          image,
          prediction: names[best[0]!],
          ranked: best.map((k) => ({
            name: present(names[k], `class ${k}`),
            score: present(scores[k], `score of class ${k}`),
            prob: present(probs[k], `probability of class ${k}`),
          })),
        };
      },
      table: (r) =>
        `${r.image}: ${r.prediction}\n${alignedTable(
          ['class', 'score', 'probability'],
          r.ranked.map((c) => [c.name, c.score.toFixed(4), percent(c.prob)]),
          [false, true, true],
        )}`,
      json: (r) => ({
        image: r.image,
        prediction: r.prediction,
        scores: Object.fromEntries(r.ranked.map((c) => [c.name, c.score])),
        probs: Object.fromEntries(r.ranked.map((c) => [c.name, c.prob])),
      }),
      csvHeader: ['image', 'rank', 'class', 'score', 'probability'],
      csv: (r) => r.ranked.map((c, k) => [r.image, k + 1, c.name, c.score, c.prob]),
    };
  });
}

export async function explainCommand(argv: string[]): Promise<void> {
  const parsed = parseCommand(
    'explain',
    argv,
    { ...OUTPUT_OPTIONS, concepts: { type: 'string' }, probe: { type: 'string' } },
    EXPLAIN_USAGE,
  );
  if (!parsed) return;
  const { values, positionals } = parsed;
  if (positionals.length === 0)
    throw new UserError('explain needs at least one image, folder or glob; see whylesion explain --help.');
  const top = values.top ? positiveInteger('top', values.top) : 10;
  if (values.probe) {
    if (values.concepts !== undefined)
      throw new UserError('--probe brings its own concepts; pass it without --concepts.');
    const scorer = await (await import('./probe.js')).explainProbeScorer(values.probe, top);
    return runOverImages('explained', positionals, values, false, async (model) => {
      scorer.checkModel(model.identity);
      return scorer;
    });
  }
  const concepts = await loadConcepts(values.concepts);
  await runOverImages('explained', positionals, values, true, async (model, status) => {
    status.phase(`encoding ${concepts.length} concept${concepts.length === 1 ? '' : 's'}`);
    const conceptRows = await (await textEncoder(model, values))(concepts);
    return {
      score: (image, row) => ({
        image,
        concepts: concepts
          .map((concept, k) => ({ concept, similarity: dot(row, conceptRows[k]!) }))
          .sort((a, b) => b.similarity - a.similarity)
          .slice(0, top),
      }),
      table: (r) =>
        `${r.image}: the ${r.concepts.length} concepts most similar to the image\n` +
        alignedTable(
          ['rank', 'similarity', 'concept'],
          r.concepts.map((c, rank) => [String(rank + 1), c.similarity.toFixed(4), c.concept]),
          [true, true, false],
        ),
      json: (r) => r,
      csvHeader: ['image', 'rank', 'concept', 'similarity'],
      csv: (r) => r.concepts.map((c, k) => [r.image, k + 1, c.concept, c.similarity]),
    };
  });
}

/**
 * Lists the images, loads the model, then decodes, embeds, scores and prints one batch at a time, so
 * memory holds one batch of pixels and (for --format json only) the result rows, whatever the folder's size.
 */
async function runOverImages<R>(
  verb: string,
  patterns: string[],
  values: Values,
  encodesText: boolean,
  prepare: (model: WhyLesionModel, status: StatusLine) => Promise<Scorer<R>>,
): Promise<void> {
  const format = outputFormat(values);
  const size = batchSize(values.batch);
  const files = await listImages(patterns);
  if (files.length === 0) throw new UserError(`No image files (${SUPPORTED_FORMATS}) found in ${patterns.join(', ')}.`);
  const status = new StatusLine(values.quiet);
  const model = await loadModelFromArgs(values, status, { preloadTokenizer: encodesText, warmShaders: true });
  // A few images (one batch) answer at once: progress and the closing count would be noise then.
  const quiet = values.quiet || files.length <= size;
  const skipped: { file: string; reason: string }[] = [];
  let done = 0;
  try {
    const scorer = await prepare(model, status);
    const out = new Output(format, scorer, status);
    const progress = new Progress(verb, files.length, 0, quiet, status);
    status.phase(
      `${verb === 'explained' ? 'explaining' : 'classifying'} ${files.length.toLocaleString('en-US')} image${files.length === 1 ? '' : 's'}`,
    );
    try {
      for (let start = 0; start < files.length; start += size) {
        const batch = await encodeImageBatch(model, files.slice(start, start + size), { normalize: !scorer.raw });
        for (const [i, file] of batch.files.entries()) await out.write(scorer.score(file, batch.rows[i]!));
        skipped.push(...batch.skipped);
        done += batch.files.length;
        progress.update(start + batch.files.length + batch.skipped.length, skipped.length);
      }
      await out.end();
    } catch (error) {
      if (error instanceof ReaderGone) return;
      throw error;
    } finally {
      progress.end();
      status.stop();
    }
  } finally {
    status.stop();
    model.dispose();
  }
  const what = verb[0]!.toUpperCase() + verb.slice(1);
  finishSkipped(`${what} ${done.toLocaleString('en-US')} image${done === 1 ? '' : 's'}`, skipped, {
    quiet,
    strict: values.strict,
    succeeded: done,
  });
}

type Format = 'table' | 'json' | 'jsonl' | 'csv';

function outputFormat(values: Values): Format {
  const format = values.format ?? (values.json ? 'json' : 'table');
  if (!['table', 'json', 'jsonl', 'csv'].includes(format))
    throw new UserError(`--format ${format} is not table, json, jsonl or csv.`);
  if (values.json && format !== 'json')
    throw new UserError(`--json means --format json; it cannot be combined with --format ${format}.`);
  return format as Format;
}

/** Results to stdout in one format; streamed formats wait for a slow reader instead of buffering. */
class Output<R> {
  private readonly kept: unknown[] = [];
  private started = false;

  constructor(
    private readonly format: Format,
    private readonly scorer: Scorer<R>,
    private readonly status: StatusLine,
  ) {}

  async write(result: R): Promise<void> {
    this.status.clear(); // results never share a terminal line with the live status
    switch (this.format) {
      case 'json':
        this.kept.push(this.scorer.json(result));
        return;
      case 'jsonl':
        return print(`${JSON.stringify(this.scorer.json(result))}\n`);
      case 'table':
        return print(this.scorer.table(result));
      case 'csv': {
        const header = this.started ? '' : csvLine(this.scorer.csvHeader);
        this.started = true;
        return print(header + this.scorer.csv(result).map(csvLine).join(''));
      }
    }
  }

  async end(): Promise<void> {
    this.status.clear();
    if (this.format === 'json') await print(`${JSON.stringify(this.kept)}\n`);
    else if (this.format === 'csv' && !this.started) await print(csvLine(this.scorer.csvHeader));
  }
}

/** stdout's reader went away (`... | head`): the run stops quietly, as Unix tools do. */
class ReaderGone extends Error {}
let readerGone = false;

async function print(text: string): Promise<void> {
  if (readerGone) throw new ReaderGone();
  try {
    if (!process.stdout.write(text)) await once(process.stdout, 'drain');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EPIPE') throw new ReaderGone();
    throw error;
  }
}

process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  readerGone = true;
});

function csvLine(fields: readonly (string | number)[]): string {
  return `${fields.map((f) => (typeof f === 'string' && /[",\r\n]/.test(f) ? `"${f.replace(/"/g, '""')}"` : String(f))).join(',')}\n`;
}

/** --labels "a,b" or --labels @file (one label a line), then every --label, trimmed, blanks dropped. */
async function readLabels(list: string | undefined, single: string[] | undefined): Promise<string[]> {
  let fromList: string[] = [];
  if (list?.startsWith('@')) {
    const path = list.slice(1);
    const text = await readFile(path, 'utf8').catch((cause: unknown) => {
      throw new UserError(
        `Cannot read the labels file ${path} (${(cause as NodeJS.ErrnoException).code ?? cause}); --labels @FILE needs a text file with one label a line.`,
        { cause },
      );
    });
    fromList = text.split(/\r?\n/);
    if (!fromList.some((l) => l.trim().length > 0))
      throw new UserError(`The labels file ${path} has no labels; write one label a line.`);
  } else if (list !== undefined) {
    fromList = list.split(',');
  }
  return [...fromList, ...(single ?? [])].map((l) => l.trim()).filter((l) => l.length > 0);
}

/** Every template with {} replaced by each text (texts in order, templates within); no templates: the texts. */
function applyTemplates(texts: readonly string[], templates: readonly string[] | undefined): string[] {
  if (!templates?.length) return [...texts];
  for (const t of templates)
    if (!t.includes('{}'))
      throw new UserError(`--template "${t}" has no {} to put the label in, e.g. "a dermoscopic image of {}".`);
  return texts.flatMap((text) => templates.map((t) => t.replaceAll('{}', text)));
}

/** open_clip's zero-shot class embedding: the mean of the unit prompt embeddings, renormalized. */
function meanEmbedding(prompts: readonly Float32Array[]): Float32Array {
  const sum = new Float32Array(prompts[0]!.length);
  for (const p of prompts)
    p.forEach((v, i) => {
      sum[i]! += v / prompts.length;
    });
  return normalized(sum);
}

async function readClasses(path: string): Promise<Record<string, string[]>> {
  let data: unknown;
  try {
    data = JSON.parse(await readFile(path, 'utf8'));
  } catch (cause) {
    throw new UserError(
      `Cannot read ${path} as JSON; it must map each class to a list of prompts, e.g. {"melanoma": ["a dermoscopic image of melanoma"]}.`,
      { cause },
    );
  }
  const ok =
    typeof data === 'object' &&
    data !== null &&
    !Array.isArray(data) &&
    Object.keys(data).length > 0 &&
    Object.values(data).every((v) => Array.isArray(v) && v.length > 0 && v.every((p) => typeof p === 'string'));
  if (!ok)
    throw new UserError(
      `${path} must map each class to a non-empty list of prompt strings, e.g. {"melanoma": ["a dermoscopic image of melanoma"]}.`,
    );
  return data as Record<string, string[]>;
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const bar = (p: number): string => '█'.repeat(Math.round(p * 30));
