import { accuracy, argmaxRows, balancedAccuracy, confusionMatrix, recalls } from './metrics.js';
import { knoboPrior, trainProbe, zeroShotScores, type Probe, type ProbeMode, type Solver } from './probe.js';
import { present } from '../errors.js';

export const EVAL_MODES = ['zeroshot', 'linear', 'concepts', 'knobo'] as const;
export type EvalMode = (typeof EVAL_MODES)[number];

/** Embeddings and labels of one split. */
export interface SplitEmbeddings {
  embeddings: Float32Array[];
  labels: number[];
}

/** One row of the paper's table, plus the per-class view. Accuracies in percent. */
export interface ModeResult {
  mode: EvalMode;
  val_acc: number;
  test_acc: number;
  /** val − test: what the domain shift costs. */
  gap: number;
  average: number;
  /** Balanced accuracy (mean per-class recall) on test, and on val. */
  balanced_acc: number;
  balanced_acc_val: number;
  recall: { val: number[]; test: number[] };
  confusion: { val: number[][]; test: number[][] };
  best_epoch?: number;
  loss?: number;
  /** Concept probes: the concepts with the largest weights for each class. */
  top_concepts?: Record<string, { concept: string; weight: number }[]>;
}

/** A mode the dataset cannot run, with the one-sentence reason. */
export interface SkippedMode {
  mode: EvalMode;
  reason: string;
}

export interface EvalInputs {
  classes: string[];
  train: SplitEmbeddings;
  val: SplitEmbeddings;
  test: SplitEmbeddings;
  /** zeroshot: prompt embeddings per class. */
  prompts?: Float32Array[][];
  /** concepts / knobo: questions and their embeddings. */
  concepts?: { texts: string[]; embeddings: Float32Array[] };
  solver?: Solver;
  seed?: number;
  epochs?: number;
  C?: number;
  normalize?: boolean;
  model?: string;
}

/** Runs one mode: trains on train (selecting on val for adam) and scores val and test. */
export async function evaluateMode(mode: EvalMode, inputs: EvalInputs): Promise<{ result: ModeResult; probe?: Probe }> {
  const K = inputs.classes.length;
  let predictVal: Int32Array,
    predictTest: Int32Array,
    probe: Probe | undefined,
    extra: Partial<ModeResult> = {};
  if (mode === 'zeroshot') {
    predictVal = argmaxRows(zeroShotScores(inputs.val.embeddings, inputs.prompts!), K);
    predictTest = argmaxRows(zeroShotScores(inputs.test.embeddings, inputs.prompts!), K);
  } else {
    const prior = mode === 'knobo' ? await knoboPrior(inputs.classes, inputs.concepts!.texts) : undefined;
    const trained = await trainProbe({
      mode: mode as ProbeMode,
      classes: inputs.classes,
      train: inputs.train,
      val: inputs.val,
      concepts: mode === 'linear' ? undefined : inputs.concepts,
      prior,
      normalize: inputs.normalize,
      solver: mode === 'knobo' ? 'adam' : inputs.solver,
      seed: inputs.seed,
      epochs: inputs.epochs,
      C: inputs.C,
      model: inputs.model,
    });
    probe = trained.probe;
    predictVal = Int32Array.from(probe.predict(inputs.val.embeddings).predictions);
    predictTest = Int32Array.from(probe.predict(inputs.test.embeddings).predictions);
    extra = {
      ...(trained.bestEpoch ? { best_epoch: trained.bestEpoch } : {}),
      ...(trained.loss !== undefined ? { loss: trained.loss } : {}),
    };
    if (probe.concepts) extra.top_concepts = topConcepts(probe, 5);
  }
  const confusion = {
    val: confusionMatrix(inputs.val.labels, predictVal, K),
    test: confusionMatrix(inputs.test.labels, predictTest, K),
  };
  const val = 100 * accuracy(confusion.val),
    test = 100 * accuracy(confusion.test);
  return {
    probe,
    result: {
      mode,
      val_acc: val,
      test_acc: test,
      gap: val - test,
      average: (val + test) / 2,
      balanced_acc: 100 * balancedAccuracy(confusion.test),
      balanced_acc_val: 100 * balancedAccuracy(confusion.val),
      recall: { val: recalls(confusion.val).map((r) => 100 * r), test: recalls(confusion.test).map((r) => 100 * r) },
      confusion,
      ...extra,
    },
  };
}

/** The `count` concepts with the largest weight for each class. */
export function topConcepts(probe: Probe, count: number): Record<string, { concept: string; weight: number }[]> {
  const concepts = probe.concepts ?? [];
  return Object.fromEntries(
    probe.classes.map((name, k) => [
      name,
      concepts
        .map((concept, c) => ({ concept, weight: present(probe.file.weight[k]?.[c], `weight ${k},${c}`) }))
        .sort((a, b) => b.weight - a.weight)
        .slice(0, count),
    ]),
  );
}

/**
 * The paper's table (val, test, gap, average) with balanced accuracy, then each mode's per-class recall and
 * test confusion matrix, its columns headed by the class names; then the modes skipped and why.
 */
export function formatTable(
  results: readonly ModeResult[],
  classes: readonly string[],
  skipped: readonly SkippedMode[] = [],
): string {
  const f = (v: number): string => (Number.isNaN(v) ? '-' : v.toFixed(1));
  const lines = [
    `${'mode'.padEnd(10)}${['val', 'test', 'gap', 'average', 'balanced'].map((h) => h.padStart(9)).join('')}`,
  ];
  for (const r of results)
    lines.push(
      `${r.mode.padEnd(10)}${[r.val_acc, r.test_acc, r.gap, r.average, r.balanced_acc].map((v) => f(v).padStart(9)).join('')}`,
    );
  lines.push('(accuracy in %; gap = val − test; balanced = mean per-class recall on test)');
  const width = Math.max(...classes.map((c) => c.length), 'true class'.length);
  const recallWidth = '100.0 / 100.0'.length;
  // Each confusion column is as wide as its class name (at least 5), so counts sit under their class.
  const columns = classes.map((c) => Math.max(c.length, 5));
  for (const r of results) {
    lines.push(
      '',
      `${r.mode}: recall val / test, and the test confusion matrix (rows: true class, columns: predicted)`,
    );
    lines.push(
      `  ${'true class'.padEnd(width)}  ${'val / test'.padStart(recallWidth)}   ${classes.map((c, j) => c.padStart(columns[j]!)).join('  ')}`,
    );
    classes.forEach((c, k) => {
      lines.push(
        `  ${c.padEnd(width)}  ${`${f(r.recall.val[k]!)} / ${f(r.recall.test[k]!)}`.padStart(recallWidth)}   ${r.confusion.test[k]!.map((n, j) => String(n).padStart(columns[j]!)).join('  ')}`,
      );
    });
  }
  if (skipped.length > 0) lines.push('', ...skipped.map((s) => `${s.mode} skipped: ${s.reason}`));
  return lines.join('\n');
}
