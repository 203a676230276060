// Pure parts of `npm run bench:peers` (bench/peers.ts): the agreement gate that must pass before anything is
// timed, and the reading of ONNX Runtime's verbose node-placement log. No I/O here, so tests can drive them.

import { PROMPTS } from './common.js';

/** The cases both halves of bench:peers time, in the order they run (batch 8 last: it may be over budget). */
export interface Case {
  id: 'image-b1' | 'image-b8' | 'text';
  label: string;
  batch: number;
}
export const CASES: Case[] = [
  { id: 'image-b1', label: 'image, batch 1', batch: 1 },
  { id: 'text', label: `text, ${PROMPTS.length} prompts`, batch: PROMPTS.length },
  { id: 'image-b8', label: 'image, batch 8', batch: 8 },
];

/** An export must agree with our engine at least this well, per output row, before its times mean anything. */
export const MIN_ROW_COSINE = 0.9999;

/** Cosine similarity of each row of two row-major [rows, dim] tables. */
export function rowCosines(ours: Float32Array, theirs: Float32Array, dim: number): number[] {
  if (ours.length !== theirs.length || dim <= 0 || ours.length % dim !== 0)
    throw new Error(`cannot compare outputs of ${ours.length} and ${theirs.length} values as rows of ${dim}`);
  const cosines: number[] = [];
  for (let row = 0; row < ours.length / dim; row++) {
    let dot = 0;
    let oursNorm = 0;
    let theirsNorm = 0;
    for (let i = row * dim; i < (row + 1) * dim; i++) {
      const a = ours[i]!;
      const b = theirs[i]!;
      dot += a * b;
      oursNorm += a * a;
      theirsNorm += b * b;
    }
    cosines.push(dot / Math.sqrt(oursNorm * theirsNorm));
  }
  return cosines;
}

export interface Agreement {
  engine: string;
  case: string;
  rows: number;
  minCosine: number;
}

/**
 * Compares another engine's output with ours and throws, naming the engine, the case and the worst row, when a
 * row's cosine is below MIN_ROW_COSINE (or not a number): a mismatched export is refused before any timing.
 */
export function checkAgreement(
  engine: string,
  caseName: string,
  ours: Float32Array,
  theirs: Float32Array,
  dim: number,
): Agreement {
  const cosines = rowCosines(ours, theirs, dim);
  // NaN ranks lowest: an output with NaN in it is the worst possible disagreement.
  const rank = (c: number | undefined) => (c === undefined || Number.isNaN(c) ? Number.NEGATIVE_INFINITY : c);
  let worst = 0;
  cosines.forEach((c, i) => {
    if (rank(c) < rank(cosines[worst])) worst = i;
  });
  const minCosine = cosines[worst] ?? Number.NaN;
  if (!(minCosine >= MIN_ROW_COSINE))
    throw new Error(
      `${engine} disagrees with whylesion on ${caseName}: row ${worst} has cosine ${minCosine} < ${MIN_ROW_COSINE}; the ONNX export does not compute our model, so nothing was timed`,
    );
  return { engine, case: caseName, rows: cosines.length, minCosine };
}

/** Per execution provider: how many nodes ONNX Runtime placed there, by op type. */
export type Placement = Record<string, { nodes: number; ops: Record<string, number> }>;

/**
 * Reads the "Node placements" block that ONNX Runtime logs at verbose severity when a session is initialised
 * (session_state.cc VerifyEachNodeIsAssignedToAnEp): either "All nodes placed on [EP]. Number of nodes: N" (op
 * types not listed), or per EP "Node(s) placed on [EP]. Number of nodes: N" followed by one "  OpType (name)"
 * line per node. Returns one entry per block found, in log order (one per session created).
 */
export function parsePlacements(log: string): Placement[] {
  const placements: Placement[] = [];
  let current: Placement | undefined;
  let ep: string | undefined;
  for (const line of log.split('\n')) {
    if (!line.includes('VerifyEachNodeIsAssignedToAnEp]')) {
      ep = undefined;
      continue;
    }
    const message = line.slice(
      line.indexOf('VerifyEachNodeIsAssignedToAnEp]') + 'VerifyEachNodeIsAssignedToAnEp]'.length,
    );
    if (message.trim() === 'Node placements') {
      current = {};
      placements.push(current);
      ep = undefined;
      continue;
    }
    if (!current) continue;
    const block = /(All nodes|Node\(s\)) placed on \[(\w+)\]\. Number of nodes: (\d+)/.exec(message);
    if (block) {
      const [, , name, count] = block;
      if (name === undefined || count === undefined) continue;
      current[name] = { nodes: Number(count), ops: {} };
      ep = name;
      continue;
    }
    const node = /^ {3}(\w+) \(/.exec(message);
    const entry = ep === undefined ? undefined : current[ep];
    if (node?.[1] !== undefined && entry) entry.ops[node[1]] = (entry.ops[node[1]] ?? 0) + 1;
  }
  return placements;
}

/** One line for a placement: "WebGpuExecutionProvider 70 nodes (MatMul 8, ...)", MatMul-like ops first. */
export function describePlacement(placement: Placement): string {
  return Object.entries(placement)
    .map(([ep, { nodes, ops }]) => {
      const list = Object.entries(ops)
        .sort(([a, x], [b, y]) => Number(/MatMul|Gemm/.test(b)) - Number(/MatMul|Gemm/.test(a)) || y - x)
        .map(([op, n]) => `${op} ${n}`)
        .join(', ');
      return `${ep} ${nodes} nodes${list ? ` (${list})` : ' (all)'}`;
    })
    .join('; ');
}

/** Where each engine put its MatMul/Gemm nodes: the EP names, or 'all on EP' when the log lists no op types. */
export function matmulProviders(placement: Placement): string[] {
  const entries = Object.entries(placement);
  if (entries.length === 1 && entries[0] && Object.keys(entries[0][1].ops).length === 0) return [entries[0][0]];
  return entries.filter(([, { ops }]) => Object.keys(ops).some((op) => /MatMul|Gemm/.test(op))).map(([ep]) => ep);
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const upper = sorted[mid];
  const lower = sorted.length % 2 === 1 ? upper : sorted[mid - 1];
  return upper === undefined || lower === undefined ? Number.NaN : (lower + upper) / 2;
}

/**
 * Whether the batch-8 case fits a time budget: its estimate is 8 × the sum of the engines' batch-1 medians, for
 * a warm-up and `rounds` timed calls each. `note` says why, in words a result can keep.
 */
export function b8Plan(b1MediansS: number[], rounds: number, budgetS: number): { run: boolean; note: string } {
  const perRound = 8 * b1MediansS.reduce((sum, s) => sum + s, 0);
  const estimate = perRound * (1 + rounds);
  if (!Number.isFinite(estimate)) return { run: false, note: 'skipped: no batch-1 median to estimate batch 8 from' };
  const text = `8 × the batch-1 medians (${b1MediansS.map((s) => s.toFixed(1)).join(' + ')} s) × ${1 + rounds} calls = ${estimate.toFixed(0)} s`;
  return estimate > budgetS
    ? { run: false, note: `skipped: ${text} exceeds the ${budgetS} s budget of this run` }
    : { run: true, note: `run: ${text} within the ${budgetS} s budget` };
}

/** One engine's figures for one case, as the results JSON records them. */
export interface Timing {
  engine: string;
  case: string;
  /** The first call: the agreement check and warm-up (compiles included); null when none was made. */
  warmupS: number | null;
  runsS: number[];
  medianS: number | null;
  note?: string;
}

/** The timings of a run, one record per engine and case, made on first use; medians filled by `finish`. */
export function timingTable(): {
  timings: Timing[];
  timing: (engine: string, c: { id: string }) => Timing;
  finish: () => void;
} {
  const timings: Timing[] = [];
  const timing = (engine: string, c: { id: string }): Timing => {
    let t = timings.find((x) => x.engine === engine && x.case === c.id);
    if (!t) {
      t = { engine, case: c.id, warmupS: null, runsS: [], medianS: null };
      timings.push(t);
    }
    return t;
  };
  const finish = () => {
    for (const t of timings) t.medianS = t.runsS.length ? median(t.runsS) : null;
  };
  return { timings, timing, finish };
}
