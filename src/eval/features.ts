import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { mkdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { WhyLesionModel } from '../api/model.js';
import { UserError } from '../errors.js';

const HASH_BYTES = 32;

/** Where image embeddings are kept between runs: $WHYLESION_FEATURE_CACHE, else ~/.cache/whylesion/features. */
export function defaultFeatureCacheDir(): string {
  return process.env.WHYLESION_FEATURE_CACHE ?? join(homedir(), '.cache', 'whylesion', 'features');
}

/**
 * What makes two embeddings of the same image equal: the model (a folder's path and its weight file's size and
 * time, or a Hub id), the weight dtype and the EXIF handling.
 */
export async function modelCacheKey(model: string, dtype: string, exifRotate: boolean): Promise<string> {
  let identity = model;
  if (!model.startsWith('hf-hub:')) {
    identity = resolve(model);
    for (const file of ['open_clip_model.safetensors', 'open_clip_pytorch_model.bin']) {
      const info = await stat(join(identity, file)).catch(() => undefined);
      if (info) identity += `|${file}:${info.size}:${info.mtimeMs}`;
    }
  }
  return JSON.stringify({ model: identity, dtype, exifRotate });
}

/**
 * Image embeddings (unnormalized, as encode_image) on disk, keyed by the SHA-256 of the image file's bytes,
 * one append-only file per model key: records of [hash, dim float32]. Each batch is appended and synced
 * before the next starts, so an interrupted run keeps what it finished; a record cut short by a crash is
 * dropped when the cache is opened.
 */
export class FeatureCache {
  private constructor(readonly path: string, readonly dim: number, private readonly rows: Map<string, Float32Array>) {}

  static async open(dir: string, modelKey: string, dim: number): Promise<FeatureCache> {
    const name = createHash('sha256').update(modelKey).digest('hex').slice(0, 24);
    const path = join(dir, `${name}.f32rows`);
    try {
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, `${name}.json`), `${JSON.stringify({ key: JSON.parse(modelKey), dim })}\n`);
    } catch (cause) {
      throw new UserError(`Cannot write the feature cache in ${dir} (${(cause as NodeJS.ErrnoException).code ?? cause}); pass --cache with a writable folder.`, { cause });
    }
    const bytes = await readFile(path).catch(() => new Uint8Array(0));
    const record = HASH_BYTES + dim * 4, whole = Math.floor(bytes.length / record);
    if (whole * record !== bytes.length) await truncate(path, whole * record);
    const rows = new Map<string, Float32Array>();
    for (let r = 0; r < whole; r++) {
      const at = bytes.byteOffset + r * record;
      const hash = Buffer.from(bytes.buffer, at, HASH_BYTES).toString('hex');
      rows.set(hash, new Float32Array(bytes.buffer.slice(at + HASH_BYTES, at + record)));
    }
    return new FeatureCache(path, dim, rows);
  }

  get size(): number {
    return this.rows.size;
  }

  get(hash: string): Float32Array | undefined {
    return this.rows.get(hash);
  }

  append(entries: readonly { hash: string; row: Float32Array }[]): void {
    if (entries.length === 0) return;
    const record = HASH_BYTES + this.dim * 4;
    const bytes = new Uint8Array(entries.length * record);
    entries.forEach(({ hash, row }, i) => {
      bytes.set(Buffer.from(hash, 'hex'), i * record);
      bytes.set(new Uint8Array(row.buffer, row.byteOffset, row.byteLength), i * record + HASH_BYTES);
      this.rows.set(hash, row);
    });
    const fd = openSync(this.path, 'a');
    try {
      writeSync(fd, bytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}

export interface EmbeddedImages {
  /** Raw embedding per path (absent for unreadable images). */
  rows: Map<string, Float32Array>;
  /** One sentence per image that could not be decoded. */
  unreadable: string[];
  /** How many images were embedded now (the rest came from the cache). */
  computed: number;
}

/** Embeds the images the cache lacks, batch by batch, and returns every image's raw embedding. */
export async function embedWithCache(
  model: WhyLesionModel, paths: readonly string[], cache: FeatureCache, options: { batch?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<EmbeddedImages> {
  const batchSize = options.batch ?? 16;
  const rows = new Map<string, Float32Array>(), unreadable: string[] = [];
  const read = (path: string): Promise<Uint8Array> => readFile(path).catch((cause: unknown) => {
    throw new UserError(`Cannot read the image ${path} (${(cause as NodeJS.ErrnoException).code ?? cause}); check the dataset folder.`, { cause });
  });
  // Hash first (keeping only the hashes: a corpus does not fit in memory), then embed what the cache lacks.
  const pending: { path: string; hash: string }[] = [];
  for (const path of paths) {
    const hash = createHash('sha256').update(await read(path)).digest('hex');
    const cached = cache.get(hash);
    if (cached) rows.set(path, cached);
    else pending.push({ path, hash });
  }
  let computed = 0;
  for (let start = 0; start < pending.length; start += batchSize) {
    const batch = pending.slice(start, start + batchSize);
    const pixels: Float32Array[] = [], ok: typeof batch = [];
    for (const item of batch) {
      try {
        pixels.push(await model.preprocess(await read(item.path), item.path));
        ok.push(item);
      } catch (e) {
        if (!(e instanceof UserError)) throw e;
        unreadable.push(e.message);
      }
    }
    if (ok.length > 0) {
      const flat = new Float32Array(pixels.length * pixels[0].length);
      pixels.forEach((p, i) => flat.set(p, i * p.length));
      const embedded = await model.encodePixels(flat, ok.length);
      cache.append(ok.map((item, i) => ({ hash: item.hash, row: embedded[i] })));
      ok.forEach((item, i) => rows.set(item.path, embedded[i]));
      computed += ok.length;
    }
    options.onProgress?.(Math.min(start + batchSize, pending.length), pending.length);
  }
  return { rows, unreadable, computed };
}
