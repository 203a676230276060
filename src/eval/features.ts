import { createHash } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { WhyLesionModel } from '../api/model.js';
import { UserError, present } from '../errors.js';
import { isDiskFull, writeAllSync, writeDurable } from '../io/durable.js';
import { identityKey, type ModelIdentity } from '../io/identity.js';
import { acquireLock, type Lock } from '../io/lock.js';
import { packRecords, readRecords, recordBytes } from './row-records.js';

/** Where image embeddings are kept between runs: $WHYLESION_FEATURE_CACHE, else ~/.cache/whylesion/features. */
export function defaultFeatureCacheDir(): string {
  return process.env.WHYLESION_FEATURE_CACHE ?? join(homedir(), '.cache', 'whylesion', 'features');
}

/**
 * What makes two embeddings of the same image equal: the model's identity (weights and config content, dtype;
 * never its path or Hub id, which can name other weights tomorrow) and the EXIF handling.
 */
export function featureCacheKey(model: ModelIdentity, exifRotate: boolean): string {
  return JSON.stringify({ model: identityKey(model), exifRotate });
}

/** First bytes of sha256(hash ‖ row): a record whose bytes changed on disk is detected and recomputed. */

/**
 * Image embeddings (unnormalized, as encode_image) on disk, keyed by the SHA-256 of the image file's bytes,
 * one append-only file per model key: records of [hash, dim float32, check]. Each batch is appended and synced
 * before the next starts, so an interrupted run keeps what it finished; a record cut short by a crash is
 * dropped when the cache is opened, and a damaged record (its check fails) is dropped with a notice. The file
 * is locked while open (io/lock.ts): a second process using the same cache is refused until `close()`.
 */
export class FeatureCache {
  private constructor(
    readonly path: string,
    readonly dim: number,
    private readonly rows: Map<string, Float32Array>,
    private readonly lock: Lock,
  ) {}

  static async open(dir: string, modelKey: string, dim: number): Promise<FeatureCache> {
    const name = createHash('sha256').update(`records with checks\n${modelKey}`).digest('hex').slice(0, 24);
    const path = join(dir, `${name}.f32rows`);
    try {
      await mkdir(dir, { recursive: true });
    } catch (cause) {
      throw new UserError(
        `Cannot write the feature cache in ${dir} (${(cause as NodeJS.ErrnoException).code ?? cause}); pass --cache with a writable folder.`,
        { cause },
      );
    }
    const lock = acquireLock(path, `The feature cache ${path}`);
    try {
      await writeDurable(join(dir, `${name}.json`), [`${JSON.stringify({ key: JSON.parse(modelKey), dim })}\n`]);
      const bytes = await readFile(path).catch(() => new Uint8Array(0));
      const { rows, good, whole } = readRecords(bytes, dim);
      if (good.length < whole) {
        process.stderr.write(
          `The feature cache ${path} had ${whole - good.length} damaged record(s); they were dropped and those images will be embedded again.\n`,
        );
      }
      if (good.length < whole || whole * recordBytes(dim) !== bytes.length) await writeDurable(path, good);
      return new FeatureCache(path, dim, rows, lock);
    } catch (error) {
      lock.release();
      throw error;
    }
  }

  get size(): number {
    return this.rows.size;
  }

  get(hash: string): Float32Array | undefined {
    return this.rows.get(hash);
  }

  append(entries: readonly { hash: string; row: Float32Array }[]): void {
    if (entries.length === 0) return;
    const bytes = packRecords(
      entries.map(({ hash, row }) => ({ key: hash, row })),
      this.dim,
    );
    const fd = openSync(this.path, 'a');
    const before = fstatSync(fd).size;
    try {
      writeAllSync(fd, bytes);
      fsyncSync(fd);
    } catch (error) {
      ftruncateSync(fd, before); // no torn record stays behind
      if (!isDiskFull(error)) throw error;
      throw new UserError(
        `The disk holding the feature cache ${this.path} is full; the images embedded so far are kept there: free some space (or pass --cache with another folder) and run again to continue.`,
        { cause: error },
      );
    } finally {
      closeSync(fd);
    }
    entries.forEach(({ hash, row }) => {
      this.rows.set(hash, row);
    });
  }

  /** Releases the cache's lock (also released when the process exits). */
  close(): void {
    this.lock.release();
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
  model: WhyLesionModel,
  paths: readonly string[],
  cache: FeatureCache,
  options: { batch?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<EmbeddedImages> {
  const batchSize = options.batch ?? 16;
  const rows = new Map<string, Float32Array>(),
    unreadable: string[] = [];
  const read = (path: string): Promise<Uint8Array> =>
    readFile(path).catch((cause: unknown) => {
      throw new UserError(
        `Cannot read the image ${path} (${(cause as NodeJS.ErrnoException).code ?? cause}); check the dataset folder.`,
        { cause },
      );
    });
  // Hash first (keeping only the hashes: a corpus does not fit in memory), then embed what the cache lacks.
  const pending: { path: string; hash: string }[] = [];
  for (const path of paths) {
    const hash = createHash('sha256')
      .update(await read(path))
      .digest('hex');
    const cached = cache.get(hash);
    if (cached) rows.set(path, cached);
    else pending.push({ path, hash });
  }
  let computed = 0;
  for (let start = 0; start < pending.length; start += batchSize) {
    const batch = pending.slice(start, start + batchSize);
    const pixels: Float32Array[] = [],
      ok: typeof batch = [];
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
      const flat = new Float32Array(pixels.length * pixels[0]!.length);
      pixels.forEach((p, i) => {
        flat.set(p, i * p.length);
      });
      const embedded = await model.encodePixels(flat, ok.length);
      cache.append(ok.map((item, i) => ({ hash: item.hash, row: present(embedded[i], `embedding of ${item.path}`) })));
      ok.forEach((item, i) => {
        rows.set(item.path, embedded[i]!);
      });
      computed += ok.length;
    }
    options.onProgress?.(Math.min(start + batchSize, pending.length), pending.length);
  }
  return { rows, unreadable, computed };
}
