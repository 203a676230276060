import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, realpath, rename, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';

/** Where file hashes are remembered between processes: $XDG_CACHE_HOME or ~/.cache, then whylesion/file-hashes. */
export function fileHashCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'whylesion', 'file-hashes');
}

/**
 * 'sha256:<hex>' of a file's bytes. Hashing ViT-L/14's 1.7 GB takes seconds, so the result is remembered under
 * the file's (realpath, dev, ino, size, mtime ns, ctime ns): any write to the file, or a new file in its place,
 * changes the key and the next load hashes again. A file the Hugging Face cache keeps as blobs/<sha256> is named
 * by its LFS etag, which is its sha256 (checked when it was downloaded), so it is not read at all.
 */
export async function fileSha256(path: string): Promise<string> {
  const real = await realpath(path);
  const name = basename(real);
  if (basename(dirname(real)) === 'blobs' && /^[0-9a-f]{64}$/.test(name)) return `sha256:${name}`;
  const info = await stat(real, { bigint: true });
  const key = [real, info.dev, info.ino, info.size, info.mtimeNs, info.ctimeNs].join('\n');
  // Remembering is an optimisation: where the cache folder is out of reach (no home, Deno without --allow-sys or
  // --allow-read for it, a read-only cache) the file is hashed each time instead.
  let memo: string | undefined;
  try {
    memo = join(fileHashCacheDir(), createHash('sha256').update(key).digest('hex').slice(0, 32));
  } catch {
    memo = undefined;
  }
  const remembered = memo === undefined ? '' : (await readFile(memo, 'utf8').catch(() => '')).trim();
  if (/^sha256:[0-9a-f]{64}$/.test(remembered)) return remembered;
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(real, { highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
  const tag = `sha256:${hash.digest('hex')}`;
  if (memo === undefined) return tag;
  try {
    await mkdir(dirname(memo), { recursive: true });
    const temporary = `${memo}.${process.pid}.tmp`;
    await writeFile(temporary, `${tag}\n`);
    await rename(temporary, memo);
  } catch {
    /* not remembered */
  }
  return tag;
}
