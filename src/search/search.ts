import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { UserError, present } from '../errors.js';
import { openEmbeddingRows, readEmbeddingSidecar, type EmbeddingHead } from '../io/embedding-reader.js';
import { describeIdentity, identityKey, type ModelIdentity } from '../io/identity.js';
import { cosineLayout, cosineWasmBytes, CosineKernel } from './cosine-kernel.js';

/** One result: the row of the index, its file and listing position, and its cosine similarity to the query. */
export interface SearchHit {
  rank: number;
  row: number;
  file: string;
  index: number;
  score: number;
}

export interface SearchOptions {
  /** How many rows to return (default 10). */
  top?: number;
  /** The identity of the model that embedded the query: refused unless it is the index's (by identityKey). */
  model?: ModelIdentity;
  /** Worker threads for a .npy index (default: the available cores); 1 scans in this thread. */
  threads?: number;
  /** A .npy index smaller than this is scanned in this thread (workers cost ~30 ms to start). Default 64 MB. */
  workerMinBytes?: number;
}

/** Bytes read and scored per step: bounded memory whatever the index's size. */
const CHUNK_BYTES = 16 << 20;

/**
 * Exact top-K search by cosine similarity: every row of an embeddings output (.npy, .jsonl or .parquet with its
 * OUT.meta.json) against the query, streamed in 16 MB chunks through a WebAssembly f32x4 kernel, split over worker
 * threads for .npy. Order: higher cosine first; equal cosines in row order (the lower row first). A zero row scores 0.
 */
export async function searchEmbeddings(
  indexPath: string,
  query: Float32Array,
  options: SearchOptions = {},
): Promise<{ hits: SearchHit[]; meta: EmbeddingHead }> {
  const top = options.top ?? 10;
  if (!Number.isInteger(top) || top < 1) throw new UserError(`top ${top} is not a whole number of at least 1.`);
  const sidecar = await readEmbeddingSidecar(indexPath);
  const index = await openEmbeddingRows(indexPath, sidecar.head);
  const meta = sidecar.head;
  if (options.model && identityKey(options.model) !== identityKey(meta.model)) {
    throw new UserError(
      `${indexPath} was embedded by another model (${describeIdentity(meta.model)}) than the query's (${describeIdentity(options.model)}); search it with the model that embedded it.`,
    );
  }
  if (query.length !== meta.dim)
    throw new UserError(
      `The query has ${query.length} values but ${indexPath} holds rows of ${meta.dim}; embed the query with the index's model.`,
    );
  const unit = unitQuery(query);
  const module = new WebAssembly.Module(cosineWasmBytes());
  const chunkRows = Math.max(1, Math.floor(CHUNK_BYTES / (meta.dim * 4)));
  const best = new TopK(top);
  const bytes = meta.rows * meta.dim * 4;
  const threads = Math.max(1, Math.min(options.threads ?? availableParallelism(), Math.ceil(meta.rows / chunkRows)));
  if (index.format === 'npy' && threads > 1 && bytes >= (options.workerMinBytes ?? 64 << 20)) {
    const per = Math.ceil(meta.rows / threads);
    const parts = await Promise.all(
      Array.from({ length: threads }, (_, t) =>
        scanInWorker({
          path: indexPath,
          dataStart: index.npyDataStart!,
          dim: meta.dim,
          rowStart: t * per,
          rowEnd: Math.min(meta.rows, (t + 1) * per),
          query: unit,
          top,
          chunkRows,
          module,
        }),
      ),
    );
    for (const part of parts) for (let i = 0; i < part.rows.length; i++) best.offer(part.scores[i]!, part.rows[i]!);
  } else {
    const kernel = new CosineKernel(module, unit, chunkRows);
    for await (const chunk of index.chunks(chunkRows)) {
      const scores = kernel.score(chunk.data, chunk.rows);
      for (let i = 0; i < chunk.rows; i++) best.offer(scores[i]!, chunk.first + i);
    }
  }
  const sorted = best.sorted();
  const names = sidecar.rowNames(sorted.map((h) => h.row));
  const hits = sorted.map(({ score, row }, rank) => ({
    rank: rank + 1,
    row,
    file: names[rank]!.file,
    index: names[rank]!.index,
    score,
  }));
  return { hits, meta };
}

function unitQuery(query: Float32Array): Float32Array {
  let sq = 0;
  for (const v of query) sq += v * v;
  if (!(sq > 0) || !Number.isFinite(sq))
    throw new UserError('The query embedding is all zeros or not finite; embed a real image or text.');
  const norm = Math.sqrt(sq);
  return Float32Array.from(query, (v) => v / norm);
}

/** The K best (score, row) pairs: higher score first, equal scores by lower row; NaN never enters. */
export class TopK {
  private readonly scores: number[] = [];
  private readonly rows: number[] = [];
  constructor(readonly k: number) {}

  offer(score: number, row: number): void {
    const n = this.scores.length;
    if (n === this.k && !(score > this.scores[n - 1]! || (score === this.scores[n - 1] && row < this.rows[n - 1]!)))
      return;
    if (Number.isNaN(score)) return;
    let at = n;
    while (at > 0 && (this.scores[at - 1]! < score || (this.scores[at - 1] === score && this.rows[at - 1]! > row)))
      at--;
    this.scores.splice(at, 0, score);
    this.rows.splice(at, 0, row);
    if (this.scores.length > this.k) {
      this.scores.pop();
      this.rows.pop();
    }
  }

  sorted(): { score: number; row: number }[] {
    return this.scores.map((score, i) => ({ score, row: present(this.rows[i], `row of hit ${i}`) }));
  }
}

interface WorkerScan {
  path: string;
  dataStart: number;
  dim: number;
  rowStart: number;
  rowEnd: number;
  query: Float32Array;
  top: number;
  chunkRows: number;
  module: WebAssembly.Module;
}

/**
 * One worker scans rows [rowStart, rowEnd) of a .npy, reading 16 MB at a time straight into the WebAssembly memory
 * (no copy), and returns its own top K in order (rows ascending, so ties keep the lower row).
 */
function scanInWorker(scan: WorkerScan): Promise<{ scores: number[]; rows: number[] }> {
  const layout = cosineLayout(scan.dim, scan.chunkRows);
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ...scan, layout } });
    worker.once('message', (result: { scores: number[]; rows: number[] } | { error: string; code?: string }) => {
      // Settle once the worker is gone, so its memory is freed before another query starts workers.
      void worker.terminate().finally(() => {
        if ('error' in result) reject(result.code === 'SHORT' ? new UserError(result.error) : new Error(result.error));
        else resolve(result);
      });
    });
    worker.once('error', reject);
  });
}

const WORKER_SOURCE = `
const { parentPort, workerData: w } = require('node:worker_threads');
const { openSync, readSync, closeSync } = require('node:fs');
try {
  const instance = new WebAssembly.Instance(w.module);
  const memory = instance.exports.memory;
  const pages = Math.ceil(w.layout.bytes / 65536) - memory.buffer.byteLength / 65536;
  if (pages > 0) memory.grow(pages);
  new Float32Array(memory.buffer, w.layout.query, w.dim).set(w.query);
  const rowBytes = w.dim * 4, K = w.top;
  const scores = [], rows = [];
  const fd = openSync(w.path, 'r');
  try {
    for (let first = w.rowStart; first < w.rowEnd; first += w.chunkRows) {
      const n = Math.min(w.chunkRows, w.rowEnd - first);
      const view = new Uint8Array(memory.buffer, w.layout.rows, n * rowBytes);
      for (let got = 0; got < view.length;) {
        const read = readSync(fd, view, got, view.length - got, w.dataStart + first * rowBytes + got);
        if (read === 0) throw Object.assign(new Error(w.path + ' ended early (it shrank while being searched); embed it again.'), { code: 'SHORT' });
        got += read;
      }
      instance.exports.cosineRows(w.layout.rows, n, w.dim, w.layout.query, w.layout.scores);
      const s = new Float32Array(memory.buffer, w.layout.scores, n);
      let worst = scores.length === K ? scores[K - 1] : -Infinity;
      for (let i = 0; i < n; i++) {
        const v = s[i];
        // Rows come in ascending order, so an equal score never displaces an earlier row.
        if (!(v > worst)) continue; // NaN never enters
        let at = scores.length;
        while (at > 0 && scores[at - 1] < v) at--;
        scores.splice(at, 0, v);
        rows.splice(at, 0, first + i);
        if (scores.length > K) { scores.pop(); rows.pop(); }
        worst = scores.length === K ? scores[K - 1] : -Infinity;
      }
    }
  } finally {
    closeSync(fd);
  }
  parentPort.postMessage({ scores, rows });
} catch (error) {
  parentPort.postMessage({ error: String(error && error.message || error), code: error && error.code });
}
`;
