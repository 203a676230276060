import { createHash } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { normalized, type WhyLesionModel } from '../api/model.js';
import { isDiskFull, writeAllSync } from '../io/durable.js';
import { identityKey } from '../io/identity.js';
import { packRecords, readRecords } from './row-records.js';
import { present } from '../errors.js';

/** Where text embeddings are kept between runs: $WHYLESION_TEXT_CACHE, else ~/.cache/whylesion/texts. */
export function defaultTextCacheDir(): string {
  return process.env.WHYLESION_TEXT_CACHE ?? join(homedir(), '.cache', 'whylesion', 'texts');
}

/**
 * Text embeddings (unnormalized, as encode_text) on disk, one append-only file per model identity, keyed by the
 * sha256 of the prompt's token ids (so another vocabulary never hits): records of [key, dim float32, check].
 * Labels, templates and concept lists (KnoBo's 200 questions for explain) are encoded once per model.
 * Concurrent processes may append to the same file: each append is one write of whole records, and a record
 * whose check fails (torn or damaged) is ignored with a notice and encoded again. Nothing is locked: a lost
 * record only costs an encoding.
 */
export class TextCache {
  /** Texts encoded by the model through this cache (the rest came from disk). */
  encoded = 0;
  private constructor(
    readonly path: string | undefined,
    private readonly dim: number,
    private readonly rows: Map<string, Float32Array>,
  ) {}

  /** A cache over `dir` for this model; `dir` undefined (--no-cache) keeps nothing on disk. */
  static async open(dir: string | undefined, model: WhyLesionModel): Promise<TextCache> {
    const dim = model.embedDim;
    if (dir === undefined) return new TextCache(undefined, dim, new Map());
    const name = createHash('sha256')
      .update(`text rows\n${identityKey(model.identity)}`)
      .digest('hex')
      .slice(0, 24);
    const path = join(dir, `${name}.f32rows`);
    const bytes = await readFile(path).catch(() => new Uint8Array(0));
    const { rows, damaged } = readRecords(bytes, dim);
    if (damaged > 0)
      process.stderr.write(
        `The text cache ${path} has ${damaged} damaged record(s); those texts will be encoded again.\n`,
      );
    try {
      await mkdir(dir, { recursive: true });
    } catch {
      return new TextCache(undefined, dim, rows); // unwritable: still read what is there
    }
    return new TextCache(path, dim, rows);
  }

  /** Embeddings of `texts` (unit rows with `normalize`), from the cache where it has them, else encoded and kept. */
  async encode(
    model: WhyLesionModel,
    texts: readonly string[],
    options: { normalize?: boolean } = {},
  ): Promise<Float32Array[]> {
    if (texts.length === 0) return [];
    const ctx = model.inputs.contextLength;
    const ids = await model.tokenize(texts);
    const keys = texts.map((_, i) =>
      createHash('sha256')
        .update(new Uint8Array(ids.buffer, ids.byteOffset + i * ctx * 4, ctx * 4))
        .digest('hex'),
    );
    const missing = [...new Set(keys.filter((k) => !this.rows.has(k)))];
    if (missing.length > 0) {
      const first = new Map<string, number>();
      keys.forEach((k, i) => {
        first.has(k) || first.set(k, i);
      });
      const missingIds = new Int32Array(missing.length * ctx);
      missing.forEach((k, j) => {
        missingIds.set(ids.subarray(first.get(k)! * ctx, (first.get(k)! + 1) * ctx), j * ctx);
      });
      const encoded = await model.encodeTokens(missingIds, missing.length);
      this.encoded += missing.length;
      missing.forEach((k, j) => {
        this.rows.set(k, encoded[j]!);
      });
      this.append(missing.map((k, j) => ({ key: k, row: present(encoded[j], `embedding of ${k}`) })));
    }
    return keys.map((k) => (options.normalize ? normalized(this.rows.get(k)!) : this.rows.get(k)!.slice()));
  }

  private append(entries: readonly { key: string; row: Float32Array }[]): void {
    if (!this.path) return;
    const bytes = packRecords(entries, this.dim);
    let fd: number | undefined,
      before = 0;
    try {
      fd = openSync(this.path, 'a');
      before = fstatSync(fd).size;
      writeAllSync(fd, bytes);
      fsyncSync(fd);
    } catch (error) {
      if (fd !== undefined) ftruncateSync(fd, before); // a torn record would misalign every later one
      // A cache that cannot grow (full disk, read-only) costs only encoding again next time.
      const code = (error as NodeJS.ErrnoException).code;
      if (!isDiskFull(error) && code !== 'EACCES' && code !== 'EROFS' && code !== 'EPERM') throw error;
      process.stderr.write(`Could not add to the text cache ${this.path} (${code}); continuing without it.\n`);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
}
