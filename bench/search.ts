/**
 * npm run bench:search: exact top-10 cosine search over synthetic .npy indexes of 100,000 and 1,000,000 rows × 768
 * float32 (with their sidecars), in the OS page cache (one untimed query first), 2 worker threads and 1.
 * Prints a table and writes bench/results/search-<rows>.json with the CPU's SIMD flags and the load average
 * (the machine is shared). Memory: the process's peak RSS (VmHWM, reset before the queries) less its RSS before.
 * Options: --rows 100000,1000000  --queries 7  --dir DIR (default: the OS temp folder; 3.1 GB for 1M rows).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { EMBEDDINGS_FORMAT, type EmbeddingMeta } from '../src/io/embedding-output.js';
import { writeEmbeddingOutput } from '../src/io/embedding-output.js';
import { searchEmbeddings } from '../src/search/search.js';
import { flag, simdFlags, writeResult } from './common.js';

const DIM = 768;
const argv = process.argv.slice(2);
const sizes = flag(argv, 'rows', '100000,1000000').split(',').map(Number);
const queries = Number(flag(argv, 'queries', '7'));
const dir = flag(argv, 'dir', join(tmpdir(), 'whylesion-bench-search'));
mkdirSync(dir, { recursive: true });

/** xorshift32 → uniform in [-1, 1): cheap enough to make 3 GB of rows. */
function fill(out: Float32Array, seed: number): void {
  let s = seed >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s / 2147483648 - 1;
  }
}

async function synthetic(rows: number): Promise<string> {
  const path = join(dir, `synthetic-${rows}x${DIM}.npy`);
  if (existsSync(`${path}.meta.json`)) return path;
  console.error(`writing ${path} (${((rows * DIM * 4) / 1e9).toFixed(2)} GB) ...`);
  const files = Array.from({ length: rows }, (_, i) => `isic/ISIC_${String(i).padStart(7, '0')}.jpg`);
  const meta: Omit<EmbeddingMeta, 'dataSha256'> = {
    format: EMBEDDINGS_FORMAT,
    model: {
      weights: `sha256:${'5'.repeat(64)}`,
      config: `sha256:${'c'.repeat(64)}`,
      dtype: 'f32',
      source: 'bench/search.ts (synthetic rows)',
    },
    normalized: false,
    exifRotate: false,
    dim: DIM,
    rows,
    listing: { total: rows, sha256: '0'.repeat(64), shard: null },
    files,
    indices: files.map((_, i) => i),
    skipped: [],
  };
  async function* batches() {
    for (let first = 0; first < rows; first += 4096) {
      const n = Math.min(4096, rows - first);
      const data = new Float32Array(n * DIM);
      fill(data, first + 1);
      yield { files: files.slice(first, first + n), data };
    }
  }
  await writeEmbeddingOutput(path, meta, batches());
  return path;
}

function status(field: string): number {
  const line = readFileSync('/proc/self/status', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(field));
  return Number(/(\d+)/.exec(line ?? '')?.[1] ?? 0) / 1024; // MB
}

const median = (v: number[]): number => {
  const m = [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  if (m === undefined) throw new Error('median of no timings');
  return m;
};

const results = [];
for (const rows of sizes) {
  const path = await synthetic(rows);
  const query = new Float32Array(DIM);
  fill(query, 987654321);
  await searchEmbeddings(path, query, { top: 10 }); // page cache and JIT warm-up, untimed
  for (const threads of [2, 1]) {
    const loadBefore = loadavg()[0]!; // os.loadavg() always has three
    const rssBefore = status('VmRSS:');
    writeFileSync('/proc/self/clear_refs', '5'); // reset VmHWM to the current RSS
    const times: number[] = [],
      cpuTimes: number[] = [];
    let hits: Awaited<ReturnType<typeof searchEmbeddings>>['hits'] = [];
    for (let q = 0; q < queries; q++) {
      fill(query, 1000 + q);
      const start = performance.now(),
        cpuStart = process.cpuUsage();
      hits = (await searchEmbeddings(path, query, { top: 10, threads })).hits;
      times.push((performance.now() - start) / 1000);
      const cpu = process.cpuUsage(cpuStart); // this process's threads (workers included), user + system
      cpuTimes.push((cpu.user + cpu.system) / 1e6);
    }
    const peak = status('VmHWM:');
    const row = {
      rows,
      dim: DIM,
      threads,
      queries,
      medianSeconds: median(times),
      medianCpuSeconds: median(cpuTimes),
      minSeconds: Math.min(...times),
      maxSeconds: Math.max(...times),
      gbPerSecond: (rows * DIM * 4) / 1e9 / median(times),
      rssBeforeMB: Math.round(rssBefore),
      peakAboveMB: Math.round(peak - rssBefore),
      loadAverage: [loadBefore, loadavg()[0]!],
      top1: hits[0],
    };
    results.push(row);
    console.error(JSON.stringify(row));
  }
  const mine = results.filter((r) => r.rows === rows);
  writeResult(`search-${rows}`, {
    date: new Date().toISOString(),
    cpu: cpus()[0]?.model,
    cpus: cpus().length,
    cpuFlags: simdFlags().join(' '),
    node: process.version,
    kernel:
      'wasm/cosine.wat (f32x4), .npy read into WebAssembly memory 16 MB at a time, one worker thread per share of rows',
    note: 'median over the queries after one untimed query (file in the page cache); CPU s = user + system time of the process (workers included) per query, the cost independent of other load; peakAboveMB = VmHWM - VmRSS before the queries, both of the whole process (workers included); the sidecar is read on every query (its head parsed, the names of the hits found by walking its arrays)',
    runs: mine,
  });
}

const pad = (s: string, n: number) => s.padStart(n);
console.log(
  `${pad('rows', 10)} ${pad('threads', 7)} ${pad('median s', 9)} ${pad('CPU s', 6)} ${pad('min s', 7)} ${pad('max s', 7)} ${pad('GB/s', 6)} ${pad('peak MB', 8)} load`,
);
for (const r of results) {
  console.log(
    `${pad(r.rows.toLocaleString('en-US'), 10)} ${pad(String(r.threads), 7)} ${pad(r.medianSeconds.toFixed(3), 9)} ${pad(r.medianCpuSeconds.toFixed(2), 6)} ${pad(r.minSeconds.toFixed(3), 7)} ${pad(r.maxSeconds.toFixed(3), 7)} ${pad(r.gbPerSecond.toFixed(2), 6)} ${pad(String(r.peakAboveMB), 8)} ${r.loadAverage.map((l) => l.toFixed(2)).join(' -> ')}`,
  );
}
