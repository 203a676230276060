import type { ModelIdentity } from '../io/identity.js';
import type { EvalMode, ModeResult } from './evaluate.js';

/** The model card's two protocols: what the side-by-side comparison shows when they ran. */
export const COMPARED_MODES: readonly EvalMode[] = ['zeroshot', 'linear'];

/** How the comparison's tables and chart name each mode. */
export const MODE_TITLES: Readonly<Record<EvalMode, string>> = {
  zeroshot: 'zero-shot',
  linear: 'linear probe',
  concepts: 'concept bottleneck',
  knobo: 'KnoBo',
};

/** One model's evaluation: the name it was given (folder or hf-hub id), what its numbers depend on, each mode's result. */
export interface ModelRun {
  model: string;
  identity: ModelIdentity;
  results: ModeResult[];
}

/** Accuracy (%) in-domain (val), out-of-domain (test, the shifted set) and their mean. */
export interface DomainAccuracy {
  in_domain: number;
  out_of_domain: number;
  average: number;
}

export const DOMAINS: readonly (keyof DomainAccuracy)[] = ['in_domain', 'out_of_domain', 'average'];
export const DOMAIN_TITLES: Readonly<Record<keyof DomainAccuracy, string>> = {
  in_domain: 'in-domain',
  out_of_domain: 'out-of-domain',
  average: 'average',
};

export interface ComparisonRow {
  model: string;
  identity: ModelIdentity;
  /** Per compared mode; a mode missing here did not run for this model. */
  accuracy: Partial<Record<EvalMode, DomainAccuracy>>;
}

export interface Comparison {
  modes: EvalMode[];
  rows: ComparisonRow[];
}

/**
 * The card's comparison: zero-shot and linear-probe accuracy per model where they ran; when neither did (e.g.
 * `--mode concepts,knobo`), the modes that ran, so a comparison is never empty.
 */
export function compareModels(runs: readonly ModelRun[]): Comparison {
  const ran = new Set(runs.flatMap((run) => run.results.map((r) => r.mode)));
  const card = COMPARED_MODES.filter((m) => ran.has(m));
  const modes = card.length > 0 ? card : [...ran];
  return {
    modes,
    rows: runs.map((run) => ({
      model: run.model,
      identity: run.identity,
      accuracy: Object.fromEntries(
        run.results
          .filter((r) => modes.includes(r.mode))
          .map((r) => [r.mode, { in_domain: r.val_acc, out_of_domain: r.test_acc, average: r.average }]),
      ),
    })),
  };
}

/** 'sha256:0123abcd' : enough of a hash to tell models apart in a table (the JSON and report carry it whole). */
export function shortHash(tag: string): string {
  const colon = tag.indexOf(':');
  return colon < 0 ? tag.slice(0, 12) : tag.slice(0, colon + 1 + 8);
}

/** The comparison as a text table: a row per model, per mode its in-domain, out-of-domain and average accuracy. */
export function formatComparison(comparison: Comparison): string {
  const f = (v: number | undefined): string => (v === undefined || Number.isNaN(v) ? '-' : v.toFixed(1));
  const nameWidth = Math.max('model'.length, ...comparison.rows.map((r) => r.model.length));
  const weightsWidth = Math.max('weights'.length, ...comparison.rows.map((r) => shortHash(r.identity.weights).length));
  const cell = Math.max(...DOMAINS.map((d) => DOMAIN_TITLES[d].length)) + 2;
  const modeWidth = cell * DOMAINS.length;
  const lead = `${''.padEnd(nameWidth)}  ${''.padEnd(weightsWidth)}  ${''.padEnd(5)}`;
  const groups = comparison.modes.map((m) => `  ${MODE_TITLES[m]}`.padEnd(modeWidth)).join('  ');
  const header = `${'model'.padEnd(nameWidth)}  ${'weights'.padEnd(weightsWidth)}  ${'dtype'}${comparison.modes
    .map(() => DOMAINS.map((d) => DOMAIN_TITLES[d].padStart(cell)).join(''))
    .join('  ')}`;
  const rows = comparison.rows.map(
    (r) =>
      `${r.model.padEnd(nameWidth)}  ${shortHash(r.identity.weights).padEnd(weightsWidth)}  ${r.identity.dtype.padEnd(5)}${comparison.modes
        .map((m) => DOMAINS.map((d) => f(r.accuracy[m]?.[d]).padStart(cell)).join(''))
        .join('  ')}`,
  );
  return [
    `${lead}${groups}`.trimEnd(),
    header,
    ...rows,
    '(accuracy in %; in-domain = val, out-of-domain = test, the shifted set; weights: the start of their sha256)',
  ].join('\n');
}
