// Types for scripts/peers-table.mjs (plain JavaScript so render-tables.mjs runs without a build).
export interface PeersResult {
  kind: 'peers';
  host: string;
  date: string;
  rounds: number;
  /** What ran: config (absent or 'ViT-L-14' = the full model) and a sentence for the table's first line. */
  model?: { config?: string; description?: string };
  machine: { cpu: string; cores: number; cpuFlags: string; lscpuFlags?: string; node?: string };
  loadAverage: { start: number[]; end: number[] };
  llvmpipe?: { LP_NUM_THREADS?: string; LP_NATIVE_VECTOR_WIDTH?: string };
  cases: { id: string; label: string; batch: number }[];
  engines: {
    id: string;
    label: string;
    version?: string;
    adapter?: string;
    matmulProviders?: string[];
    placement?: Record<string, Record<string, { nodes: number; ops: Record<string, number> }> | undefined>;
    dawnWarnings?: string[];
  }[];
  timings: { engine: string; case: string; warmupS: number | null; runsS: number[]; medianS: number | null; note?: string }[];
  agreement: { engine: string; case: string; rows: number; minCosine: number }[];
}
export interface Figure {
  system: string;
  case: string;
  seconds: number;
  date: string | null;
  load?: string;
  flags?: string;
  file: string;
  source?: string;
}
export function perCall(result: PeersResult, engineId: string, caseId: string): number | null;
export function peersTable(result: PeersResult, file: string): string;
export function figures(files: Record<string, unknown>): Figure[];
export function latestAndHistory(all: Figure[]): { latest: Figure[]; history: Figure[] };
export function latestTable(latest: Figure[]): string;
export function historyTable(history: Figure[]): string;
