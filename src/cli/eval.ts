import { readFile, stat } from 'node:fs/promises';
import { packageFile } from '../assets.js';
import { DEFAULT_BOTTLENECK, KNOBO_BOTTLENECKS, loadConcepts } from '../concepts/knobo.js';
import { UserError } from '../errors.js';
import { compareModels, formatComparison, type ModelRun } from '../eval/compare.js';
import { defaultFeatureCacheDir, embedWithCache, FeatureCache, featureCacheKey } from '../eval/features.js';
import {
  EVAL_MODES,
  evaluateMode,
  formatTable,
  type EvalInputs,
  type EvalMode,
  type ModeResult,
  type SkippedMode,
} from '../eval/evaluate.js';
import { knoboPrior, type Solver } from '../eval/probe.js';
import { renderReport } from '../eval/report.js';
import { defaultTextCacheDir, TextCache } from '../eval/text-cache.js';
import {
  knoboDatasetNames,
  readImageFolderDataset,
  readKnoboDataset,
  sampleShots,
  SPLITS,
  type EvalDataset,
  type SplitName,
} from '../eval/splits.js';
import { DEFAULT_MODEL, MODEL_OPTIONS, MODEL_USAGE, parseCommand, positiveInteger } from './args.js';
import { writeAtomic } from './corpus.js';
import { resolveModelDir } from '../io/hub.js';
import { describeIdentity, type ModelIdentity } from '../io/identity.js';
import { acquireLock } from '../io/lock.js';
import { loadModelFromArgs } from './load.js';
import { refuseToOverwrite } from './outputs.js';
import { Progress } from './images.js';
import { StatusLine } from './status.js';

/** Options eval and probe train share: the dataset, its images, the features and the training. */
export const DATASET_OPTIONS = {
  ...MODEL_OPTIONS,
  bottleneck: { type: 'string' },
  images: { type: 'string' },
  'max-missing': { type: 'string' },
  shots: { type: 'string' },
  seed: { type: 'string' },
  solver: { type: 'string' },
  C: { type: 'string' },
  epochs: { type: 'string' },
  raw: { type: 'boolean' },
  cache: { type: 'string' },
  batch: { type: 'string' },
  'no-cache': { type: 'boolean' },
} as const;

export const DATASET_USAGE = `
DATASET is a folder with train/, val/ and test/, each holding one folder of images per class (ImageFolder),
or a KnoBo dataset (${'HAM10000, BCN20000, PAD-UFES-20, Melanoma, UWaterloo, ISIC-age, ...'}) with --images ROOT:
the paper's splits ship with whylesion and name images relative to ROOT. val is in-distribution, test shifted.
  --images ROOT          datasets root for a KnoBo dataset
  --max-missing N        images the splits name that may be absent under ROOT (listed, then left out; default 0)
  --bottleneck NAME|FILE concept questions for concepts/knobo: ${KNOBO_BOTTLENECKS.join(', ')} or a file (default ${DEFAULT_BOTTLENECK})
  --shots N              N training images per class, drawn with --seed (default: all)
  --seed N               shuffles, initial weights and shots (default 0; same seed, same result)
  --solver adam|lbfgs    adam: KnoBo's (Adam lr 1e-3, batch 64, 200 epochs, best val epoch); lbfgs: full-batch
                         L-BFGS with L2 as scikit-learn's LogisticRegression (deterministic; not for knobo)
  --C VALUE              lbfgs inverse L2 strength (default 1)
  --epochs N             adam epochs (default 200)
  --raw                  linear mode on unnormalized embeddings (default: L2-normalized)
  --cache DIR            image-embedding cache (default $WHYLESION_FEATURE_CACHE, else ~/.cache/whylesion/features):
                         each image is embedded once per model, and an interrupted run resumes
  --no-cache             encode concepts and prompts afresh, without the text-embedding cache ($WHYLESION_TEXT_CACHE,
                         else ~/.cache/whylesion/texts; kept per model identity); the image cache is --cache's
  --batch N              images per forward (default 16)`;

const USAGE = `
Usage: whylesion eval DATASET [--mode zeroshot,linear,...] [--models A,B,C] [--json] [--report FILE.html] [options]

The model card's evaluation: accuracy on val and test, their gap and average (the KnoBo paper's table),
balanced accuracy, per-class recall and the confusion matrix, for each mode:
  zeroshot   class prompt ensembles (--classes FILE.json, default examples/classes/<DATASET>.json for
             KnoBo datasets, else the class names), no training
  linear     logistic regression on the image embedding
  concepts   logistic regression on the cosines of the image with each concept question (--bottleneck)
  knobo      concepts plus KnoBo's prior loss mean |tanh(W) − P| toward skin_class2concept2answer.json
  --mode LIST            comma-separated modes (default all four)
  --models A,B,C         evaluate several models (folders or hf-hub: ids, instead of --model) and compare them:
                         a table of zero-shot and linear-probe accuracy per model (in-domain = val,
                         out-of-domain = test, average), each model's identity, in --json and --report too
  --classes FILE.json    zeroshot prompts: {"class": ["prompt", ...]}
  --json                 print {"dataset", "classes", "results": [{"mode", "val_acc", "test_acc", "gap", "average",
                         "balanced_acc", "recall", "confusion": {"val", "test"}, ...}], "models": [{"model",
                         "identity", "results"}], "comparison"} (accuracies in %; "results" with one model only)
  --report FILE.html     write one self-contained page: the models' accuracy side by side (a bar chart),
                         confusion matrices, per-class recall, top concepts
                         (an existing file is kept unless --force)
  --force                overwrite an existing --report file
A mode this dataset cannot run (knobo for a class KnoBo's priors lack; zeroshot when the default prompts
lack a class) is skipped with its reason on stderr, listed in the JSON's "skipped"; the others run.
${DATASET_USAGE}
${MODEL_USAGE}`;

export interface DatasetValues {
  bottleneck?: string;
  images?: string;
  'max-missing'?: string;
  shots?: string;
  seed?: string;
  solver?: string;
  C?: string;
  epochs?: string;
  raw?: boolean;
  cache?: string;
  batch?: string;
  'no-cache'?: boolean;
  model?: string;
  dtype?: string;
  vocab?: string;
  'exif-rotate'?: boolean;
}

/** A folder dataset, or a KnoBo dataset under --images with the missing-image policy applied. */
export async function openDataset(spec: string, values: DatasetValues): Promise<EvalDataset> {
  const info = await stat(spec).catch(() => undefined);
  if (info?.isDirectory()) return readImageFolderDataset(spec);
  const known = await knoboDatasetNames();
  if (!known.some((k) => k.toLowerCase() === spec.toLowerCase()))
    throw new UserError(`${spec} is neither a dataset folder nor a KnoBo dataset (${known.join(', ')}).`);
  if (!values.images)
    throw new UserError(
      `The KnoBo dataset ${spec} needs --images ROOT, the folder its split files' image paths start from.`,
    );
  const dataset = await readKnoboDataset(spec, values.images);
  const allowed = values['max-missing'] ? positiveInteger('max-missing', values['max-missing'], 0, 1e9) : 0;
  if (dataset.missing.length > 0) {
    const shown = dataset.missing.slice(0, 20);
    process.stderr.write(
      `${dataset.missing.length} image(s) of ${dataset.name}'s splits are missing under ${values.images}:\n${shown.map((m) => `  ${m}\n`).join('')}${dataset.missing.length > shown.length ? `  ... and ${dataset.missing.length - shown.length} more\n` : ''}`,
    );
    if (dataset.missing.length > allowed) {
      throw new UserError(
        `${dataset.missing.length} image(s) of ${dataset.name} are missing under ${values.images} (at most ${allowed} allowed); fix --images or pass --max-missing ${dataset.missing.length} to evaluate without them.`,
      );
    }
  }
  return dataset;
}

export interface TrainingSettings {
  solver: Solver;
  seed: number;
  epochs: number;
  C: number;
  normalize: boolean;
  shots?: number;
}

export function trainingSettings(values: DatasetValues): TrainingSettings {
  const solver = values.solver ?? 'adam';
  if (solver !== 'adam' && solver !== 'lbfgs') throw new UserError(`--solver ${solver} is not adam or lbfgs.`);
  const C = values.C === undefined ? 1 : Number(values.C);
  if (!(C > 0) || !Number.isFinite(C)) throw new UserError(`--C ${values.C} is not a positive number.`);
  return {
    solver,
    C,
    normalize: !values.raw,
    seed: values.seed ? positiveInteger('seed', values.seed, 0, 2 ** 32 - 1) : 0,
    epochs: values.epochs ? positiveInteger('epochs', values.epochs, 1, 100_000) : 200,
    shots: values.shots ? positiveInteger('shots', values.shots) : undefined,
  };
}

/**
 * Embeds the dataset's images (through the feature cache) and the texts the modes need, and returns the
 * inputs of evaluateMode. Unreadable images are left out with a warning.
 */
export async function prepareInputs(
  dataset: EvalDataset,
  values: DatasetValues,
  needs: { concepts?: string[]; prompts?: string[][] },
  settings: TrainingSettings,
  /** Rewords a UserError from loading the model (eval --models names which of the models failed). */
  loadFailure?: (error: UserError) => UserError,
): Promise<EvalInputs & { embedded: number; cached: number; identity: ModelIdentity }> {
  const splits = {
    ...dataset.splits,
    train: settings.shots
      ? sampleShots(dataset.splits.train, dataset.classes.length, settings.shots, settings.seed)
      : dataset.splits.train,
  };
  const batch = values.batch ? positiveInteger('batch', values.batch) : 16;
  const modelName = values.model ?? process.env.WHYLESION_MODEL ?? DEFAULT_MODEL;
  const status = new StatusLine();
  const model = await loadModelFromArgs(values, status, { warmShaders: true }).catch((error: unknown) => {
    throw loadFailure && error instanceof UserError ? loadFailure(error) : error;
  });
  try {
    status.phase('reading the images (cached embeddings are not recomputed)');
    const cache = await FeatureCache.open(
      values.cache ?? defaultFeatureCacheDir(),
      featureCacheKey(model.identity, values['exif-rotate'] ?? false),
      model.embedDim,
    );
    const paths = [...new Set(SPLITS.flatMap((s) => splits[s].map((im) => im.path)))];
    let progress: Progress | undefined; // over the images not in the feature cache
    // Created at the first batch's end, so its rate counts from there: cached images are no work done now.
    const onProgress = (done: number, total: number): void => {
      if (!progress) {
        status.phase(`embedding ${total.toLocaleString('en-US')} image${total === 1 ? '' : 's'} not in the cache`);
        progress = new Progress('embedded', total, done, false, status);
      }
      progress.update(done, 0);
    };
    let embedded: Awaited<ReturnType<typeof embedWithCache>>;
    try {
      embedded = await embedWithCache(model, paths, cache, { batch, onProgress });
    } finally {
      cache.close();
      progress?.end();
      status.stop();
    }
    const { rows, unreadable, computed } = embedded;
    if (unreadable.length > 0)
      process.stderr.write(
        `Left out ${unreadable.length} unreadable image(s):\n${unreadable.map((u) => `  ${u}\n`).join('')}`,
      );
    const split = (name: SplitName) => {
      const present = splits[name].filter((im) => rows.has(im.path));
      return { embeddings: present.map((im) => rows.get(im.path)!), labels: present.map((im) => im.label) };
    };
    const inputs: EvalInputs & { embedded: number; cached: number; identity: ModelIdentity } = {
      classes: dataset.classes,
      train: split('train'),
      val: split('val'),
      test: split('test'),
      solver: settings.solver,
      seed: settings.seed,
      epochs: settings.epochs,
      C: settings.C,
      normalize: settings.normalize,
      model: modelName,
      embedded: computed,
      cached: paths.length - computed - unreadable.length,
      identity: model.identity,
    };
    for (const name of SPLITS)
      if (inputs[name].labels.length === 0)
        throw new UserError(`${dataset.name}'s ${name} split has no readable images; check the dataset.`);
    const texts = await TextCache.open(values['no-cache'] ? undefined : defaultTextCacheDir(), model);
    if (needs.concepts) {
      status.phase(`encoding ${needs.concepts.length} concepts`);
      inputs.concepts = { texts: needs.concepts, embeddings: await texts.encode(model, needs.concepts) };
    }
    if (needs.prompts) {
      status.phase(`encoding ${needs.prompts.flat().length} zero-shot prompts`);
      inputs.prompts = [];
      for (const p of needs.prompts) inputs.prompts.push(await texts.encode(model, p));
    }
    return inputs;
  } finally {
    status.stop();
    model.dispose();
  }
}

/** Zero-shot prompts per class: --classes FILE, else examples/classes/<dataset>.json for a KnoBo dataset, else the class names. */
async function zeroShotPrompts(dataset: EvalDataset, file: string | undefined): Promise<string[][]> {
  let path = file;
  if (!path && dataset.source === 'knobo') {
    try {
      path = packageFile(`examples/classes/${dataset.name}.json`);
    } catch {
      path = undefined;
    }
  }
  if (!path) return dataset.classes.map((c) => [c]);
  let data: unknown;
  try {
    data = JSON.parse(await readFile(path, 'utf8'));
  } catch (cause) {
    throw new UserError(
      `Cannot read ${path} as JSON; it must map each class to a list of prompts, e.g. {"melanoma": ["a dermoscopic image of melanoma"]}.`,
      { cause },
    );
  }
  const map = (typeof data === 'object' && data !== null && !Array.isArray(data) ? data : {}) as Record<
    string,
    unknown
  >;
  return dataset.classes.map((c) => {
    const prompts = map[c];
    if (!Array.isArray(prompts) || prompts.length === 0 || !prompts.every((p) => typeof p === 'string')) {
      throw new UserError(
        `${path} has no prompts for class '${c}'; map each of ${dataset.classes.map((k) => `'${k}'`).join(', ')} to a list of prompt strings.`,
      );
    }
    return prompts as string[];
  });
}

export function parseModes(value: string | undefined, allowed: readonly string[] = EVAL_MODES): EvalMode[] {
  const modes = (value ?? allowed.join(','))
    .split(',')
    .map((m) => m.trim())
    .filter((m) => m.length > 0);
  const unknown = modes.filter((m) => !allowed.includes(m));
  if (modes.length === 0 || unknown.length > 0)
    throw new UserError(`--mode ${value} must list modes from ${allowed.join(', ')}, separated by commas.`);
  return [...new Set(modes)] as EvalMode[];
}

export async function evalCommand(argv: string[]): Promise<void> {
  const parsed = parseCommand(
    'eval',
    argv,
    {
      ...DATASET_OPTIONS,
      models: { type: 'string' },
      mode: { type: 'string' },
      classes: { type: 'string' },
      json: { type: 'boolean' },
      report: { type: 'string' },
      force: { type: 'boolean' },
    },
    USAGE,
  );
  if (!parsed) return;
  const { values, positionals } = parsed;
  if (positionals.length !== 1)
    throw new UserError(
      'eval needs one DATASET (a folder with train/ val/ test/, or a KnoBo dataset name with --images); see whylesion eval --help.',
    );
  const modes = parseModes(values.mode);
  const settings = trainingSettings(values);
  if (values.report && !values.report.endsWith('.html'))
    throw new UserError(`--report ${values.report} must end in .html.`);
  if (values.report) await refuseToOverwrite(values.report, values, '--report');
  const reportLock = values.report ? acquireLock(values.report, `The report ${values.report}`) : undefined;
  try {
    await evaluate(positionals[0]!, values, modes, settings);
  } finally {
    reportLock?.release();
  }
}

/**
 * The models to evaluate: --models A,B,C, else the one --model (or $WHYLESION_MODEL, or the default). Local folders
 * are checked before anything loads, so a mistyped third path does not cost two models' runs first.
 */
async function modelSpecs(values: { model?: string; models?: string }): Promise<string[]> {
  if (values.models === undefined) return [values.model ?? process.env.WHYLESION_MODEL ?? DEFAULT_MODEL];
  if (values.model !== undefined)
    throw new UserError('--model and --models cannot be used together; list every model in --models A,B,C.');
  const specs = values.models
    .split(',')
    .map((m) => m.trim())
    .filter((m) => m.length > 0);
  if (specs.length === 0)
    throw new UserError(`--models ${values.models} names no model; pass folders or hf-hub: ids separated by commas.`);
  const twice = specs.find((m, i) => specs.indexOf(m) !== i);
  if (twice !== undefined) throw new UserError(`--models names ${twice} twice; list each model once.`);
  for (const spec of specs) if (!spec.startsWith('hf-hub:')) await resolveModelDir(spec);
  return specs;
}

async function evaluate(
  datasetSpec: string,
  values: DatasetValues & { classes?: string; json?: boolean; report?: string; models?: string },
  modes: EvalMode[],
  settings: TrainingSettings,
): Promise<void> {
  const specs = await modelSpecs(values);
  const dataset = await openDataset(datasetSpec, values);
  // A mode this dataset cannot run is skipped with its reason, before any model loads; the others run.
  const skipped: SkippedMode[] = [];
  const skip = (mode: EvalMode, error: unknown): void => {
    if (!(error instanceof UserError)) throw error;
    skipped.push({ mode, reason: error.message });
    process.stderr.write(`Skipping ${mode}: ${error.message}\n`);
  };
  const needsConcepts = modes.includes('concepts') || modes.includes('knobo');
  const concepts = needsConcepts ? await loadConcepts(values.bottleneck) : undefined;
  if (modes.includes('knobo') && concepts)
    await knoboPrior(dataset.classes, concepts).catch((error: unknown) => skip('knobo', error));
  let prompts: string[][] | undefined;
  if (modes.includes('zeroshot')) {
    // A prompts file the user named that does not fit is their mistake to fix; the default one may simply not cover this dataset.
    try {
      prompts = await zeroShotPrompts(dataset, values.classes);
    } catch (error) {
      if (values.classes) throw error;
      skip('zeroshot', error);
    }
  }
  const running = modes.filter((m) => !skipped.some((s) => s.mode === m));
  if (running.length === 0)
    throw new UserError(
      `None of the modes ${modes.join(', ')} can run on ${dataset.name} (reasons above); pick others with --mode.`,
    );
  // One model at a time (each is disposed before the next loads, so memory is one model's). A model that cannot
  // be loaded ends the run with nothing written: a comparison without it is not the one asked for, and the models
  // before it keep their embeddings in the feature cache, so the rerun recomputes nothing for them.
  const runs: ModelRun[] = [];
  for (const [index, spec] of specs.entries()) {
    const inputs = await prepareInputs(
      dataset,
      { ...values, model: spec },
      { concepts: running.some((m) => m === 'concepts' || m === 'knobo') ? concepts : undefined, prompts },
      settings,
      specs.length > 1
        ? (error) =>
            new UserError(
              `--models ${spec} (model ${index + 1} of ${specs.length}) cannot be loaded, so nothing was compared: ${lowerFirst(error.message)}`,
              { cause: error },
            )
        : undefined,
    );
    process.stderr.write(
      `${dataset.name} with ${spec}: ${dataset.classes.length} classes; train ${inputs.train.labels.length}, val ${inputs.val.labels.length}, test ${inputs.test.labels.length} images (${inputs.embedded} embedded now, ${inputs.cached} from the cache)\n`,
    );
    const results: ModeResult[] = [];
    const status = new StatusLine();
    try {
      for (const mode of running) {
        status.phase(`evaluating ${mode}${specs.length > 1 ? ` (model ${index + 1} of ${specs.length})` : ''}`);
        results.push((await evaluateMode(mode, inputs)).result);
      }
    } finally {
      status.stop();
    }
    runs.push({ model: spec, identity: inputs.identity, results });
  }
  const comparison = compareModels(runs);
  if (values.report) {
    await writeAtomic(values.report, [
      renderReport({
        dataset: dataset.name,
        classes: dataset.classes,
        models: runs,
        skipped,
        settings: { ...settings, bottleneck: needsConcepts ? (values.bottleneck ?? DEFAULT_BOTTLENECK) : undefined },
      }),
    ]);
    process.stderr.write(`Wrote ${values.report}\n`);
  }
  const [only] = runs;
  if (values.json) {
    console.log(
      JSON.stringify({
        dataset: dataset.name,
        classes: dataset.classes,
        // One model: its results at the top level too, as before --models existed.
        ...(runs.length === 1 && only ? { results: only.results } : {}),
        skipped,
        models: runs,
        comparison,
      }),
    );
  } else if (runs.length === 1 && only) {
    console.log(formatTable(only.results, dataset.classes, skipped));
  } else {
    // The comparison first, then each model's own table (the paper's columns, recall, confusion), then what was skipped.
    const details = runs.map(
      (run) => `== ${run.model} (${describeIdentity(run.identity)})\n${formatTable(run.results, dataset.classes)}`,
    );
    const skippedLines = skipped.map((s) => `${s.mode} skipped: ${s.reason}`);
    console.log(
      [formatComparison(comparison), ...details, ...(skippedLines.length ? [skippedLines.join('\n')] : [])].join(
        '\n\n',
      ),
    );
  }
}

/** 'Model folder x …' → 'model folder x …', to follow a colon; an acronym ('HTTP …') stays. */
const lowerFirst = (s: string): string => (/^[A-Z][a-z]/.test(s) ? `${s.charAt(0).toLowerCase()}${s.slice(1)}` : s);
