import { readdir, stat } from 'node:fs/promises';
import type { Dirent } from 'node:fs';
import { join, relative, sep } from 'node:path';
import type { WhyLesionModel } from '../api/model.js';
import { UserError } from '../errors.js';
import { trace } from '../platform/trace.js';
import { SUPPORTED_FORMATS } from '../image/index.js';
import { positiveInteger } from './args.js';
import { stderrIsTerminal } from './quiet-dawn.js';
import type { StatusLine } from './status.js';

/** What `classify`, `zeroshot`, `explain` and `embed DIR` share for working through a folder of images. */

export const BATCH_OPTIONS = {
  batch: { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  strict: { type: 'boolean' },
} as const;

export const BATCH_USAGE = `  --batch N       images decoded and embedded together (default 16); memory stays that of one batch
  --quiet, -q     no progress on stderr (shown when the images span more than one batch: a live line on a
                  terminal, else a line after the first batch and then every 5 s) nor the closing count
  --strict        exit 1 if any file could not be read (unreadable files are skipped and listed at the end)`;

export function batchSize(value: string | undefined): number {
  return value === undefined ? 16 : positiveInteger('batch', value, 1, 4096);
}

export const IMAGE_EXTENSIONS = /\.(jpe?g|png|bmp|gif|tiff?|webp)$/i;

/** Where listImages reports a folder it could not read (and skipped). */
export type Notice = (message: string) => void;
const toStderr: Notice = (message) => process.stderr.write(`${message}\n`);

/**
 * Image paths from plain files, folders (recursively) and globs with *, ? and **: in argument order,
 * each folder's or glob's files sorted, each file once. Each real directory is read once (a symlink loop
 * such as `self -> .` or a link to `..` adds nothing), a file reached through several links or names is
 * listed once (by its first path in sorted order), and a subfolder that cannot be read is skipped with a
 * notice instead of ending the run.
 */
export async function listImages(patterns: string[], notice: Notice = toStderr): Promise<string[]> {
  const found: string[] = [];
  const seenFiles = new Set<string>();
  const add = (path: string, key: string): void => {
    if (seenFiles.has(key)) return;
    seenFiles.add(key);
    found.push(path);
  };
  for (const pattern of patterns) {
    if (!/[*?[]/.test(pattern)) {
      const info = await stat(pattern).catch(() => undefined);
      if (!info) throw new UserError(`${pattern} does not exist; pass image folders, files or globs.`);
      if (info.isDirectory()) {
        for (const f of await walk(pattern, notice)) if (IMAGE_EXTENSIONS.test(f.path)) add(f.path, f.key);
      } else {
        add(pattern, fileKey(info));
      }
      continue;
    }
    const parts = pattern.split(/[\\/]/);
    const fixed = parts.findIndex((p) => /[*?[]/.test(p));
    const root = parts.slice(0, fixed).join(sep) || '.';
    const matcher = globRegExp(parts.slice(fixed).join('/'));
    const rootInfo = await stat(root).catch(() => undefined);
    if (!rootInfo?.isDirectory()) continue;
    for (const f of await walk(root, notice)) {
      if (matcher.test(relative(root, f.path).split(sep).join('/')) && IMAGE_EXTENSIONS.test(f.path))
        add(f.path, f.key);
    }
  }
  return found;
}

/** A file's identity across links: device and inode. */
function fileKey(info: { dev: number; ino: number }): string {
  return `${info.dev}:${info.ino}`;
}

/**
 * Every file under `root` (symlinks followed), sorted by path. Iterative, so depth cannot overflow the stack;
 * each real directory (device + inode) is read once.
 */
async function walk(root: string, notice: Notice): Promise<{ path: string; key: string }[]> {
  const files: { path: string; key: string }[] = [];
  const rootInfo = await stat(root);
  const seenDirs = new Set<string>([fileKey(rootInfo)]);
  const pending = [root];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? String(error);
      if (dir === root)
        throw new UserError(`Cannot read the folder ${dir} (${code}); check its permissions.`, { cause: error });
      notice(`whylesion: skipped the folder ${dir}, which cannot be read (${code}).`);
      continue;
    }
    // Sorted, so that which of two links to one directory is followed does not depend on the file system's order.
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const path = join(dir, entry.name);
      // stat follows links: a link's target decides what it is, and the target's identity what it repeats.
      const info =
        entry.isSymbolicLink() || entry.isDirectory() || entry.isFile()
          ? await stat(path).catch(() => undefined)
          : undefined;
      if (info?.isDirectory()) {
        const key = fileKey(info);
        if (!seenDirs.has(key)) {
          seenDirs.add(key);
          pending.push(path);
        }
      } else if (info?.isFile()) {
        files.push({ path, key: fileKey(info) });
      }
    }
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function globRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
      if (glob[i + 1] === '/') i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

export interface EncodedBatch {
  /** The files that decoded, in order, with their embedding rows. */
  files: string[];
  rows: Float32Array[];
  /** The files that could not be read or decoded, with the one-sentence reason (which names the file). */
  skipped: { file: string; reason: string }[];
}

/**
 * Decodes and embeds `files` in one forward. Only this batch's pixels are ever held, so a folder of any
 * size runs in the memory of one batch; a file that cannot be read or decoded is reported, not fatal.
 */
export async function encodeImageBatch(
  model: WhyLesionModel,
  files: readonly string[],
  options: { normalize: boolean },
): Promise<EncodedBatch> {
  const pixels: Float32Array[] = [];
  const ok: string[] = [];
  const skipped: EncodedBatch['skipped'] = [];
  for (const file of files) {
    try {
      pixels.push(await model.preprocess(file));
      ok.push(file);
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      skipped.push({ file, reason: e.message.replace(/\s+/g, ' ') });
    }
  }
  trace('images preprocessed', `(${pixels.length})`);
  if (pixels.length === 0) return { files: ok, rows: [], skipped };
  const flat = new Float32Array(pixels.length * pixels[0]!.length);
  pixels.forEach((p, i) => {
    flat.set(p, i * p.length);
  });
  return { files: ok, rows: await model.encodePixels(flat, pixels.length, options), skipped };
}

/** How often a redirected stderr (a batch job's log) gets a progress line. */
const LOG_EVERY_MS = 5000;

/**
 * Progress on stderr: a live line redrawn in place on a terminal (through the command's StatusLine when it
 * has one); otherwise (a log file, a batch system) a plain line after the first batch, so the log shows the
 * job started and its rate, then every few seconds. The rate and ETA count only images embedded since the
 * count started at `first` (resumed or cached ones are not work done now), and are left out until there are some.
 */
export class Progress {
  private readonly started = Date.now();
  private lastLine = -Infinity;
  private drawn = false;

  constructor(
    private readonly verb: string,
    private readonly total: number,
    private readonly first = 0,
    private readonly quiet = false,
    private readonly status?: StatusLine,
    private readonly stream: NodeJS.WritableStream = process.stderr,
    private readonly tty = stderrIsTerminal(),
  ) {}

  update(done: number, skipped: number): void {
    if (this.quiet) return;
    const now = Date.now();
    const tty = this.tty;
    if (tty ? now - this.lastLine < 100 && done < this.total : this.drawn && now - this.lastLine < LOG_EVERY_MS) return;
    this.lastLine = now;
    const seconds = Math.max((now - this.started) / 1000, 1e-3);
    const rate = (done - this.first) / seconds;
    const pace = rate > 0 ? `, ${rate.toFixed(2)} images/s, ETA ${Math.round((this.total - done) / rate)} s` : '';
    const line =
      `${this.verb} ${done.toLocaleString('en-US')}/${this.total.toLocaleString('en-US')} images` +
      ` (${((100 * done) / this.total).toFixed(1)}%)${pace}${skipped > 0 ? `, ${skipped} skipped` : ''}`;
    if (tty && this.status?.live) this.status.progress(line, true);
    else this.stream.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
    this.drawn = true;
  }

  /** Ends the live line so what follows starts on a fresh one. */
  end(): void {
    if (this.quiet || !this.drawn || !this.tty) return;
    if (this.status?.live) this.status.stop();
    else this.stream.write('\n');
  }
}

/**
 * The closing summary on stderr (what was done, then every skipped file with why); with --strict a
 * skipped file makes the run fail, after its results were written.
 */
export function finishSkipped(
  done: string,
  skipped: readonly { reason: string }[],
  options: { quiet?: boolean; strict?: boolean; succeeded?: number },
): void {
  // Nothing could be read (e.g. `classify notes.txt`): that is a failure, not "0 images".
  if (options.succeeded === 0 && skipped.length === 1) throw new UserError(skipped[0]!.reason);
  if (options.succeeded === 0 && skipped.length > 1) {
    process.stderr.write(
      `None of the ${skipped.length.toLocaleString('en-US')} files could be read:\n${skipped.map((s) => `  ${s.reason}\n`).join('')}`,
    );
    throw new UserError(
      `None of the ${skipped.length.toLocaleString('en-US')} image files could be read (listed above); pass ${SUPPORTED_FORMATS} images.`,
    );
  }
  if (skipped.length === 0) {
    if (!options.quiet) process.stderr.write(`${done}.\n`);
    return;
  }
  process.stderr.write(
    `${done}; skipped ${skipped.length.toLocaleString('en-US')} unreadable:\n${skipped.map((s) => `  ${s.reason}\n`).join('')}`,
  );
  if (options.strict)
    throw new UserError(
      `${skipped.length.toLocaleString('en-US')} file(s) could not be read (listed above), and --strict makes that an error.`,
    );
}
