import { createReadStream } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { UserError, present } from '../errors.js';
import {
  EMBEDDINGS_FORMAT,
  embeddingFormat,
  metaPath,
  type EmbeddingFormat,
  type EmbeddingMeta,
} from './embedding-output.js';
import { readNpyHeader } from './npy.js';
import { openParquetEmbeddings } from './parquet.js';

/*
 * Reading `whylesion embed --out` outputs (README, "Large collections"): the sidecar OUT.meta.json and the rows of OUT in
 * any of the three formats, streamed in bounded chunks. The writer and the sidecar's type are in embedding-output.ts.
 */

/** The sidecar without its per-row lists and hash (what Parquet's key-value metadata holds, too). */
export type EmbeddingHead = Omit<EmbeddingMeta, 'files' | 'indices' | 'skipped' | 'dataSha256'>;

/** Reads and checks OUT.meta.json; every problem is one sentence naming the file. */
export async function readEmbeddingMeta(out: string): Promise<EmbeddingMeta> {
  return parseSidecar(out, await readSidecarText(out));
}

async function readSidecarText(out: string): Promise<string> {
  return (await readSidecarBytes(out)).toString('utf8');
}

async function readSidecarBytes(out: string): Promise<Buffer> {
  const path = metaPath(out);
  let text: Buffer;
  try {
    text = await readFile(path);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const problem =
      code === 'ENOENT'
        ? await stat(out).then(
            () => 'is missing (an output of an older whylesion, or an unfinished run?)',
            () => `is missing, and so is ${out}`,
          )
        : `cannot be read (${code ?? cause})`;
    throw new UserError(`${path} ${problem}; embed the folder again with whylesion embed --out ${out}.`, { cause });
  }
  return text;
}

function parseSidecar(out: string, text: string): EmbeddingMeta {
  const path = metaPath(out);
  let meta: EmbeddingMeta;
  try {
    meta = JSON.parse(text) as EmbeddingMeta;
  } catch (cause) {
    throw new UserError(`${path} is not valid JSON; embed the folder again.`, { cause });
  }
  const bad = metaProblem(meta);
  if (bad) throw new UserError(`${path} is not a whylesion embeddings sidecar (${bad}); embed the folder again.`);
  return meta;
}

/** The sidecar's head, and the files and listing positions of chosen rows, read without parsing every row's entry. */
export interface LazySidecar {
  head: EmbeddingHead;
  rowNames(rows: readonly number[]): { file: string; index: number }[];
}

const FILES_KEY = ',"files":[',
  INDICES_KEY = '],"indices":[';

/**
 * Reads OUT.meta.json for a search: parses only the head (JSON.parse of a million file names takes about half a
 * second, longer than scanning the rows), and finds the names of the hits by walking the files and indices
 * arrays (a raw '"' cannot occur inside a JSON string, so the arrays' boundaries are found by indexOf).
 */
export async function readEmbeddingSidecar(out: string): Promise<LazySidecar> {
  const bytes = Buffer.from(await readSidecarBytes(out));
  const filesAt = bytes.indexOf(FILES_KEY);
  if (filesAt < 0) {
    const meta = parseSidecar(out, bytes.toString('utf8')); // throws the precise complaint
    return {
      head: meta,
      rowNames: (rows) =>
        rows.map((r) => ({
          file: present(meta.files[r], `file of row ${r}`),
          index: present(meta.indices[r], `index of row ${r}`),
        })),
    };
  }
  let head: EmbeddingHead;
  try {
    head = JSON.parse(`${bytes.toString('utf8', 0, filesAt)}}`) as EmbeddingHead;
  } catch (cause) {
    throw new UserError(`${metaPath(out)} is not valid JSON; embed the folder again.`, { cause });
  }
  const bad = headProblem(head);
  if (bad)
    throw new UserError(`${metaPath(out)} is not a whylesion embeddings sidecar (${bad}); embed the folder again.`);
  const broken = () =>
    new UserError(`${metaPath(out)} lists fewer files or indices than its ${head.rows} rows; embed the folder again.`);
  const QUOTE = 0x22,
    BACKSLASH = 0x5c,
    ZERO = 0x30;
  return {
    head,
    rowNames(rows) {
      const last = Math.max(-1, ...rows);
      if (last >= head.rows) throw broken();
      const wanted = new Set(rows);
      const files = new Map<number, string>(),
        indices = new Map<number, number>();
      // Byte by byte, allocating nothing per entry: a million names take a few tens of milliseconds.
      let p = filesAt + FILES_KEY.length;
      for (let k = 0; k <= last; k++) {
        if (bytes[p] !== QUOTE) throw broken();
        let q = p + 1;
        for (;;) {
          while (q < bytes.length && bytes[q] !== QUOTE) q++;
          if (q >= bytes.length) throw broken();
          let slashes = 0;
          while (bytes[q - 1 - slashes] === BACKSLASH) slashes++;
          if (slashes % 2 === 0) break;
          q++;
        }
        if (wanted.has(k)) files.set(k, JSON.parse(bytes.toString('utf8', p, q + 1)) as string);
        p = q + 2; // past the closing quote and the ',' or ']'
      }
      p = bytes.indexOf(INDICES_KEY, p - 1);
      if (p < 0) throw broken();
      p += INDICES_KEY.length;
      for (let k = 0; k <= last; k++) {
        let n = 0,
          digits = 0;
        for (; bytes[p]! >= ZERO && bytes[p]! <= ZERO + 9; p++, digits++) n = n * 10 + bytes[p]! - ZERO;
        if (digits === 0) throw broken();
        if (wanted.has(k)) indices.set(k, n);
        p++; // the ',' or ']'
      }
      return rows.map((r) => ({ file: files.get(r)!, index: indices.get(r)! }));
    },
  };
}

const isWhole = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;
const isIdentityPart = (v: unknown): boolean => typeof v === 'string' && v.length > 0;

function metaProblem(meta: EmbeddingMeta): string | undefined {
  const head = headProblem(meta);
  if (head) return head;
  if (
    !Array.isArray(meta.files) ||
    !Array.isArray(meta.indices) ||
    meta.files.length !== meta.rows ||
    meta.indices.length !== meta.rows
  )
    return `files and indices do not both hold rows=${meta.rows} entries`;
  if (!meta.files.every((f) => typeof f === 'string') || !meta.indices.every(isWhole))
    return 'files or indices of the wrong type';
  if (
    !Array.isArray(meta.skipped) ||
    !meta.skipped.every((s) => typeof s?.file === 'string' && isWhole(s.index) && typeof s.reason === 'string')
  )
    return 'a malformed skipped list';
  if (typeof meta.dataSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(meta.dataSha256)) return 'no dataSha256';
  return undefined;
}

function headProblem(meta: EmbeddingHead): string | undefined {
  if (typeof meta !== 'object' || meta === null) return 'not an object';
  if (meta.format !== EMBEDDINGS_FORMAT) return `format ${JSON.stringify(meta.format)}, expected ${EMBEDDINGS_FORMAT}`;
  const m = meta.model;
  if (
    typeof m !== 'object' ||
    m === null ||
    !isIdentityPart(m.weights) ||
    !isIdentityPart(m.config) ||
    (m.dtype !== 'f32' && m.dtype !== 'f16')
  )
    return 'no model identity';
  if (!isWhole(meta.dim) || meta.dim === 0 || !isWhole(meta.rows)) return 'dim or rows is not a whole number';
  const l = meta.listing;
  if (typeof l !== 'object' || l === null || !isWhole(l.total) || typeof l.sha256 !== 'string') return 'no listing';
  if (
    l.shard !== null &&
    (typeof l.shard !== 'object' ||
      !isWhole(l.shard.index) ||
      !isWhole(l.shard.count) ||
      l.shard.index >= l.shard.count)
  )
    return 'a malformed listing.shard';
  return undefined;
}

/** A run of consecutive rows: `data` holds `rows` × dim float32 values, the first being row `first` of the file. */
export interface RowChunk {
  first: number;
  rows: number;
  data: Float32Array;
}

export interface EmbeddingRows<M extends EmbeddingHead = EmbeddingMeta> {
  meta: M;
  format: EmbeddingFormat;
  /** Where the float32 rows of a .npy start in the file (for readers that split it by byte range). */
  npyDataStart?: number;
  /**
   * The rows in file order, at most `maxRows` at a time; a data file that disagrees with the sidecar throws. A
   * chunk's data may be overwritten once the next chunk is asked for: copy what you keep.
   */
  chunks(maxRows: number): AsyncIterable<RowChunk>;
}

/**
 * Opens an embeddings output for streaming: reads the sidecar and checks that the data file's size (.npy), row
 * count and schema (.parquet) agree with it; .jsonl rows are checked as they stream. The data file's hash is not
 * checked here (that reads it whole; `merge` does, `search` does not).
 */
export async function openEmbeddingRows(out: string): Promise<EmbeddingRows>;
/** The same with the sidecar (or its head) already read. */
export async function openEmbeddingRows<M extends EmbeddingHead>(out: string, meta: M): Promise<EmbeddingRows<M>>;
export async function openEmbeddingRows(out: string, given?: EmbeddingHead): Promise<EmbeddingRows<EmbeddingHead>> {
  const format = embeddingFormat(out);
  if (!format)
    throw new UserError(`${out} is not an embeddings output; its name must end in .npy, .jsonl or .parquet.`);
  const meta = given ?? (await readEmbeddingMeta(out));
  const size = await stat(out).then(
    (s) => s.size,
    (cause: NodeJS.ErrnoException) => {
      throw new UserError(
        `${out} cannot be read (${cause.code ?? cause}) although ${metaPath(out)} is there; embed the folder again.`,
        { cause },
      );
    },
  );
  const disagree = (what: string): UserError =>
    new UserError(
      `${out} ${what}, but ${metaPath(out)} says ${meta.rows} rows of ${meta.dim} values; the pair does not belong together (embed again, or restore both files).`,
    );
  const E = meta.dim;
  if (format === 'npy') {
    const handle = await open(out, 'r');
    let header: ReturnType<typeof readNpyHeader>;
    try {
      const head = new Uint8Array(Math.min(size, 4096));
      await handle.read(head, 0, head.length, 0);
      header = readNpyHeader(head, out);
    } finally {
      await handle.close();
    }
    const { shape, dtype, dataStart } = header;
    if (dtype !== 'float32' || shape.length !== 2 || shape[0] !== meta.rows || shape[1] !== E)
      throw disagree(`holds ${dtype} (${shape.join(', ')})`);
    if (size !== dataStart + meta.rows * E * 4)
      throw disagree(`is ${size} bytes long, not ${dataStart + meta.rows * E * 4}`);
    return {
      meta,
      format,
      npyDataStart: dataStart,
      chunks: (maxRows) => npyChunks(out, dataStart, meta.rows, E, maxRows),
    };
  }
  if (format === 'jsonl') return { meta, format, chunks: (maxRows) => jsonlChunks(out, meta, maxRows, disagree) };
  const parquet = await openParquetEmbeddings(out);
  if (parquet.rows !== meta.rows || parquet.dim !== E)
    throw disagree(`holds ${parquet.rows} rows of ${parquet.dim} values`);
  return { meta, format, chunks: (maxRows) => parquet.chunks(maxRows) };
}

async function* npyChunks(
  path: string,
  dataStart: number,
  rows: number,
  E: number,
  maxRows: number,
): AsyncIterable<RowChunk> {
  const handle = await open(path, 'r');
  try {
    // One buffer for every chunk: a chunk's data is valid until the next one is asked for.
    const buffer = new Float32Array(Math.min(maxRows, rows) * E);
    for (let first = 0; first < rows; first += maxRows) {
      const count = Math.min(maxRows, rows - first);
      const data = buffer.subarray(0, count * E);
      const bytes = new Uint8Array(data.buffer, 0, data.byteLength);
      let done = 0;
      while (done < bytes.length) {
        const { bytesRead } = await handle.read(bytes, done, bytes.length - done, dataStart + first * E * 4 + done);
        if (bytesRead === 0)
          throw new UserError(`${path} ended early (it shrank while being read); embed the folder again.`);
        done += bytesRead;
      }
      yield { first, rows: count, data };
    }
  } finally {
    await handle.close();
  }
}

async function* jsonlChunks(
  path: string,
  meta: EmbeddingHead & { files?: string[] },
  maxRows: number,
  disagree: (what: string) => UserError,
): AsyncIterable<RowChunk> {
  const E = meta.dim;
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  let row = 0,
    first = 0;
  let data = new Float32Array(Math.min(maxRows, Math.max(meta.rows, 1)) * E);
  for await (const line of lines) {
    if (row >= meta.rows) throw disagree('has more lines');
    let parsed: { file?: unknown; embedding?: unknown };
    try {
      parsed = JSON.parse(line) as typeof parsed;
    } catch (cause) {
      throw new UserError(`${path} line ${row + 1} is not JSON; embed the folder again.`, { cause });
    }
    const embedding = parsed.embedding;
    if (
      (meta.files && parsed.file !== meta.files[row]) ||
      typeof parsed.file !== 'string' ||
      !Array.isArray(embedding) ||
      embedding.length !== E
    ) {
      throw disagree(
        `line ${row + 1} is not {"file": ${meta.files ? JSON.stringify(meta.files[row]) : '"…"'}, "embedding": [${E} numbers]}`,
      );
    }
    data.set(embedding as number[], (row - first) * E);
    row++;
    if (row - first === data.length / E) {
      yield { first, rows: row - first, data };
      first = row;
      data = new Float32Array(Math.min(maxRows, Math.max(meta.rows - row, 1)) * E);
    }
  }
  if (row !== meta.rows) throw disagree(`has ${row} lines`);
  if (row > first) yield { first, rows: row - first, data: data.subarray(0, (row - first) * E) };
}
