import { readKnoboFile } from '../concepts/knobo.js';
import { UserError, present } from '../errors.js';
import { describeIdentity, identityKey, isModelIdentity, type ModelIdentity } from '../io/identity.js';
import { platform } from '../platform/index.js';
import { argmaxRows } from './metrics.js';
import { linearScores, trainAdam, trainLbfgs, type LabeledFeatures, type LinearModel } from './train.js';

export const PROBE_MODES = ['linear', 'concepts', 'knobo'] as const;
export type ProbeMode = (typeof PROBE_MODES)[number];
export type Solver = 'adam' | 'lbfgs';

/** A trained probe as saved by `whylesion probe train --out` (JSON). */
export interface ProbeFile {
  format: 'whylesion-probe';
  version: 1;
  mode: ProbeMode;
  classes: string[];
  /** Linear probes: whether image embeddings are L2-normalized first (concept probes always are). */
  normalize: boolean;
  /** Concept probes: the concept questions and their unit text embeddings. */
  concepts?: string[];
  conceptEmbeddings?: number[][];
  /** [classes][features] and [classes]. */
  weight: number[][];
  bias: number[];
  /** The model the embeddings came from; a probe only makes sense on the same model's embeddings. */
  model?: string;
  /** That model's identity (weights and config hashes, dtype); probes from before it was recorded lack it. */
  modelIdentity?: ModelIdentity;
  training: Record<string, unknown>;
}

/** A linear classifier over image embeddings (linear) or over their cosines to concept questions (concepts, knobo). */
export class Probe {
  private readonly linear: LinearModel;
  private readonly conceptMatrix?: Float32Array;

  constructor(readonly file: ProbeFile) {
    const K = file.classes.length,
      dim = file.weight[0]?.length ?? 0;
    this.linear = {
      weight: Float64Array.from(file.weight.flat()),
      bias: Float64Array.from(file.bias),
      classes: K,
      dim,
    };
    if (file.mode !== 'linear' && file.conceptEmbeddings)
      this.conceptMatrix = Float32Array.from(file.conceptEmbeddings.flat());
  }

  get mode(): ProbeMode {
    return this.file.mode;
  }
  get classes(): string[] {
    return this.file.classes;
  }
  get concepts(): string[] | undefined {
    return this.file.concepts;
  }

  /** The probe's input features of image embeddings (raw or unit rows): [n, features] row-major. */
  features(embeddings: readonly Float32Array[]): Float32Array {
    if (embeddings.length > 0 && embeddings[0]!.length !== this.embeddingDim) {
      throw new UserError(
        `The probe expects ${this.embeddingDim}-dimensional image embeddings but got ${embeddings[0]!.length}; use the model it was trained with${this.file.model ? ` (${this.file.model})` : ''}.`,
      );
    }
    if (this.conceptMatrix) return conceptSimilarities(embeddings, this.conceptMatrix, this.file.concepts!.length);
    return stackRows(embeddings, this.file.normalize);
  }

  private get embeddingDim(): number {
    return this.conceptMatrix ? this.file.conceptEmbeddings![0]!.length : this.linear.dim;
  }

  /** Class probabilities (softmax of the logits) and the predicted class of each embedding. */
  predict(embeddings: readonly Float32Array[]): { probabilities: number[][]; predictions: number[]; labels: string[] } {
    const K = this.classes.length,
      logits = linearScores(this.linear, this.features(embeddings), embeddings.length);
    if (!logits.every(Number.isFinite)) {
      throw new UserError(
        "The probe's scores overflow (its weights are too large for these embeddings) or an embedding holds NaN/Inf; train the probe again.",
      );
    }
    const predictions = Array.from(argmaxRows(logits, K));
    const probabilities = embeddings.map((_, i) => softmax(Array.from(logits.subarray(i * K, (i + 1) * K))));
    return { probabilities, predictions, labels: predictions.map((k) => present(this.classes[k], `class ${k}`)) };
  }

  /** A concept probe's reasons for class k: each concept's weight × similarity, largest first. */
  contributions(
    embedding: Float32Array,
    k: number,
  ): { concept: string; similarity: number; weight: number; contribution: number }[] {
    if (!this.conceptMatrix || !this.file.concepts)
      throw new UserError(
        `A ${this.mode} probe has no concepts to explain with; train one with --mode concepts or knobo.`,
      );
    const similarities = this.features([embedding]);
    const w = this.file.weight[k]!;
    return this.file.concepts
      .map((concept, c) => ({
        concept,
        similarity: present(similarities[c], `similarity to concept ${c}`),
        weight: present(w[c], `weight of concept ${c}`),
        contribution: w[c]! * similarities[c]!,
      }))
      .sort((a, b) => b.contribution - a.contribution);
  }
}

/** Reads a probe file written by `whylesion probe train` (a path; a URL in the browser). */
export async function loadProbe(path: string): Promise<Probe> {
  let text: string;
  try {
    text = await platform.readText(path, 'the probe');
  } catch (cause) {
    throw new UserError(`Cannot read the probe ${path} as JSON; pass a file written by whylesion probe train --out.`, {
      cause,
    });
  }
  return parseProbe(text, path);
}

/** A probe from the text of its file (e.g. a File picked in a page); `name` names it in errors. */
export function parseProbe(text: string, name: string): Probe {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (cause) {
    throw new UserError(`Cannot read the probe ${name} as JSON; pass a file written by whylesion probe train --out.`, {
      cause,
    });
  }
  return new Probe(checkProbeFile(data, name));
}

/** What a JSON value is, for messages: `"NaN"` (a string), null, an object, 1e+999 read as Infinity. */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return JSON.stringify(value.length > 20 ? `${value.slice(0, 20)}…` : value);
  return String(value);
}

/**
 * Checks every field predict() and contributions() read, so that a damaged or hand-edited probe is refused when
 * read, in one sentence naming the field, instead of ranking NaN first. Unknown extra fields are kept as they are.
 */
function checkProbeFile(data: unknown, name: string): ProbeFile {
  const damaged = (field: string, problem: string): UserError =>
    new UserError(`The probe ${name} has ${field} ${problem}; train it again with whylesion probe train --out.`);
  if (
    typeof data !== 'object' ||
    data === null ||
    Array.isArray(data) ||
    (data as { format?: unknown }).format !== 'whylesion-probe'
  ) {
    throw new UserError(
      `${name} is not a whylesion probe (its "format" is not "whylesion-probe"); train one with whylesion probe train --out.`,
    );
  }
  const file = data as Record<string, unknown>;
  if (!PROBE_MODES.includes(file.mode as ProbeMode))
    throw damaged('"mode"', `${describe(file.mode)}, not one of ${PROBE_MODES.join(', ')}`);
  const strings = (field: string): string[] => {
    const list = file[field];
    if (!Array.isArray(list) || list.length === 0)
      throw damaged(`"${field}"`, `${list === undefined ? 'missing' : describe(list)}, not a non-empty list of names`);
    const bad = list.findIndex((item) => typeof item !== 'string');
    if (bad >= 0) throw damaged(`${field}[${bad}]`, `${describe(list[bad])}, not a name`);
    return list as string[];
  };
  const numbers = (value: unknown, field: string, length?: number): number[] => {
    if (!Array.isArray(value))
      throw damaged(field, `${value === undefined ? 'missing' : describe(value)}, not a list of numbers`);
    if (length !== undefined && value.length !== length)
      throw damaged(field, `${value.length} values where ${length} are needed`);
    const bad = value.findIndex((v) => typeof v !== 'number' || !Number.isFinite(v));
    if (bad >= 0) throw damaged(`${field}[${bad}]`, `${describe(value[bad])}, not a finite number`);
    return value as number[];
  };
  const matrix = (field: string, rows: number): number[][] => {
    const value = file[field];
    if (!Array.isArray(value))
      throw damaged(`"${field}"`, `${value === undefined ? 'missing' : describe(value)}, not a list of rows`);
    if (value.length !== rows) throw damaged(`"${field}"`, `${value.length} rows where ${rows} are needed`);
    const width = Array.isArray(value[0]) ? value[0].length : 0;
    if (width === 0) throw damaged(`${field}[0]`, `${describe(value[0])}, not a non-empty list of numbers`);
    value.forEach((row, r) => {
      numbers(row, `${field}[${r}]`, width);
    });
    return value as number[][];
  };
  const classes = strings('classes');
  const weight = matrix('weight', classes.length);
  numbers(file.bias, '"bias"', classes.length);
  if (typeof file.normalize !== 'boolean')
    throw damaged(
      '"normalize"',
      `${file.normalize === undefined ? 'missing' : describe(file.normalize)}, not true or false`,
    );
  if (file.mode !== 'linear') {
    const concepts = strings('concepts');
    if (concepts.length !== weight[0]!.length)
      throw damaged('"concepts"', `${concepts.length} entries where the weight rows have ${weight[0]!.length}`);
    matrix('conceptEmbeddings', concepts.length);
  }
  return file as unknown as ProbeFile;
}

export interface TrainProbeOptions {
  mode: ProbeMode;
  classes: string[];
  train: { embeddings: readonly Float32Array[]; labels: readonly number[] };
  /** Selects the epoch (adam); not used by lbfgs. */
  val: { embeddings: readonly Float32Array[]; labels: readonly number[] };
  /** concepts / knobo: the questions and their text embeddings (raw or unit). */
  concepts?: { texts: string[]; embeddings: readonly Float32Array[] };
  /** knobo: P[class][concept] in {+1, -1, 0}; default: knoboPrior(classes, concepts). */
  prior?: Float32Array;
  /** Linear mode: L2-normalize the image embeddings first (default true). */
  normalize?: boolean;
  solver?: Solver;
  seed?: number;
  epochs?: number;
  /** lbfgs: inverse L2 strength (scikit-learn's C, default 1). */
  C?: number;
  model?: string;
}

/** Trains a probe the KnoBo way (adam, the default) or with the deterministic full-batch solver (lbfgs). */
export async function trainProbe(
  options: TrainProbeOptions,
): Promise<{ probe: Probe; bestEpoch?: number; loss?: number }> {
  const { mode, classes, solver = 'adam', seed = 0, epochs = 200, C = 1 } = options;
  const normalize = mode === 'linear' ? (options.normalize ?? true) : true;
  let conceptMatrix: Float32Array | undefined, unitConcepts: Float32Array[] | undefined;
  if (mode !== 'linear') {
    if (!options.concepts || options.concepts.texts.length === 0)
      throw new UserError(`A ${mode} probe needs concept questions (--bottleneck).`);
    unitConcepts = options.concepts.embeddings.map(unit);
    conceptMatrix = stackRows(unitConcepts, false);
  }
  const features = (split: TrainProbeOptions['train']): LabeledFeatures => {
    const x = conceptMatrix
      ? conceptSimilarities(split.embeddings, conceptMatrix, unitConcepts!.length)
      : stackRows(split.embeddings, normalize);
    return {
      x,
      y: Int32Array.from(split.labels),
      n: split.labels.length,
      dim: x.length / Math.max(split.labels.length, 1),
    };
  };
  const train = features(options.train),
    val = features(options.val);
  if (train.n === 0) throw new UserError('There are no training images to fit a probe on.');
  let model: LinearModel, bestEpoch: number | undefined, loss: number | undefined;
  if (solver === 'lbfgs') {
    if (mode === 'knobo')
      throw new UserError('The knobo prior loss is not smooth, so it trains with --solver adam only.');
    ({ model, loss } = trainLbfgs(train, classes.length, { C }));
  } else {
    const prior =
      mode === 'knobo' ? (options.prior ?? (await knoboPrior(classes, options.concepts!.texts))) : undefined;
    ({ model, bestEpoch } = trainAdam(train, val, classes.length, { epochs, seed, prior }));
  }
  const d = model.dim;
  const file: ProbeFile = {
    format: 'whylesion-probe',
    version: 1,
    mode,
    classes,
    normalize,
    ...(options.concepts
      ? { concepts: options.concepts.texts, conceptEmbeddings: unitConcepts!.map((r) => Array.from(r)) }
      : {}),
    weight: classes.map((_, k) => Array.from(model.weight.subarray(k * d, (k + 1) * d))),
    bias: Array.from(model.bias),
    ...(options.model ? { model: options.model } : {}),
    training: {
      solver,
      ...(solver === 'adam' ? { seed, epochs, bestEpoch, batchSize: 64, learningRate: 1e-3 } : { C, loss }),
      trainImages: train.n,
    },
  };
  return { probe: new Probe(file), bestEpoch, loss };
}

/** KnoBo's prior from skin_class2concept2answer.json: +1 for a "yes", −1 for a "no", 0 where it has no answer. */
export async function knoboPrior(classes: readonly string[], concepts: readonly string[]): Promise<Float32Array> {
  const answers = JSON.parse(await readKnoboFile('skin_class2concept2answer.json')) as Record<
    string,
    Record<string, string>
  >;
  const prior = new Float32Array(classes.length * concepts.length);
  classes.forEach((name, k) => {
    const byConcept = answers[name];
    if (!byConcept)
      throw new UserError(
        `KnoBo's priors have no class '${name}' (they know ${Object.keys(answers).join(', ')}); use --mode concepts for other classes.`,
      );
    concepts.forEach((c, j) => {
      prior[k * concepts.length + j] = byConcept[c] === 'yes' ? 1 : byConcept[c] === 'no' ? -1 : 0;
    });
  });
  return prior;
}

/** Zero-shot scores [n, classes]: each class's mean cosine between the image and its prompts. */
export function zeroShotScores(
  images: readonly Float32Array[],
  promptsByClass: readonly (readonly Float32Array[])[],
): Float64Array {
  const K = promptsByClass.length,
    out = new Float64Array(images.length * K);
  const prompts = promptsByClass.map((rows) => rows.map(unit));
  images.forEach((image, i) => {
    const u = unit(image);
    prompts.forEach((rows, k) => {
      out[i * K + k] = rows.reduce((s, p) => s + dotProduct(u, p), 0) / rows.length;
    });
  });
  return out;
}

/** Cosines [n, concepts] of the images (normalized here) with unit concept rows [concepts, dim]. */
function conceptSimilarities(embeddings: readonly Float32Array[], concepts: Float32Array, count: number): Float32Array {
  const dim = concepts.length / count,
    out = new Float32Array(embeddings.length * count);
  embeddings.forEach((e, i) => {
    const u = unit(e);
    for (let c = 0; c < count; c++) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += u[j]! * concepts[c * dim + j]!;
      out[i * count + c] = s;
    }
  });
  return out;
}

function stackRows(rows: readonly Float32Array[], normalize: boolean): Float32Array {
  const dim = rows[0]?.length ?? 0,
    out = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => {
    out.set(normalize ? unit(r) : r, i * dim);
  });
  return out;
}

export function unit(row: Float32Array): Float32Array {
  let n = 0;
  for (const v of row) n += v * v;
  n = Math.sqrt(n) || 1;
  return row.map((v) => v / n);
}

function dotProduct(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function softmax(logits: number[]): number[] {
  const max = Math.max(...logits);
  const e = logits.map((l) => Math.exp(l - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

/** Refuses a probe trained on another model's embeddings (by identity; a probe without one is accepted). */
export function checkProbeModel(probe: Probe, model: ModelIdentity, what: string): void {
  const trained = probe.file.modelIdentity;
  if (trained === undefined) return;
  if (!isModelIdentity(trained))
    throw new UserError(`${what} has a damaged modelIdentity; train the probe again with whylesion probe train.`);
  if (identityKey(trained) !== identityKey(model)) {
    throw new UserError(
      `${what} was trained on another model (${describeIdentity(trained)}), not ${describeIdentity(model)}; pass that model with --model, or train a probe on this one.`,
    );
  }
}
