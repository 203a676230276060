import { COSINE_WASM_BASE64 } from './cosine-wasm.generated.js';

/** The cosine-scan module (wasm/cosine.wat): f32x4 SIMD, one query against a block of rows. */
export function cosineWasmBytes(): Uint8Array<ArrayBuffer> {
  const text = atob(COSINE_WASM_BASE64);
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

/** Memory layout shared by the in-process kernel and the worker threads: query, then rows, then scores. */
export function cosineLayout(
  dim: number,
  maxRows: number,
): { query: number; rows: number; scores: number; bytes: number } {
  const align = (n: number) => Math.ceil(n / 16) * 16;
  const query = 0,
    rows = align(dim * 4),
    scores = rows + align(maxRows * dim * 4);
  return { query, rows, scores, bytes: scores + align(maxRows * 4) };
}

/** Scores blocks of up to maxRows rows against a unit-length query in this thread. */
export class CosineKernel {
  private readonly memory: WebAssembly.Memory;
  private readonly cosineRows: (x: number, n: number, d: number, q: number, out: number) => void;
  private readonly layout: ReturnType<typeof cosineLayout>;

  constructor(
    module: WebAssembly.Module,
    query: Float32Array,
    readonly maxRows: number,
  ) {
    const instance = new WebAssembly.Instance(module);
    this.memory = instance.exports.memory as WebAssembly.Memory;
    this.cosineRows = instance.exports.cosineRows as CosineKernel['cosineRows'];
    this.layout = cosineLayout(query.length, maxRows);
    const pages = Math.ceil(this.layout.bytes / 65536) - this.memory.buffer.byteLength / 65536;
    if (pages > 0) this.memory.grow(pages);
    new Float32Array(this.memory.buffer, this.layout.query, query.length).set(query);
  }

  /** cos(row r, query) for the `rows` (at most maxRows) rows in `data`; the view is valid until the next call. */
  score(data: Float32Array, rows: number): Float32Array {
    if (rows > this.maxRows) throw new Error(`CosineKernel.score: ${rows} rows, at most ${this.maxRows}`);
    const dim = data.length / rows;
    new Float32Array(this.memory.buffer, this.layout.rows, rows * dim).set(data);
    this.cosineRows(this.layout.rows, rows, dim, this.layout.query, this.layout.scores);
    return new Float32Array(this.memory.buffer, this.layout.scores, rows);
  }
}
