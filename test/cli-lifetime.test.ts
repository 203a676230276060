import { spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY, VOCAB_URL } from './helpers.js';

/**
 * `kill -9` of the PID a user sees stops all of the CLI's work. Where Dawn's warnings cannot be muted in
 * place (stderr a socket, as Node's child_process gives it, or a regular file) the CLI filters them in a
 * child; that child must die with its parent. Where they can (a terminal, a pipe, /dev/null) there is no child.
 */
const CLI = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
const MODEL = fileURLToPath(new URL('model', TINY));
const IMAGE = fileURLToPath(new URL('images/lesion_q90.jpg', TINY));
const env = { ...process.env, WHYLESION_BPE_VOCAB: fileURLToPath(VOCAB_URL) };
const IMAGES = 400;
const HANG_GUARD_MS = 60_000;

let work: string;
let folder: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'whylesion-lifetime-'));
  folder = join(work, 'images');
  mkdirSync(folder);
  for (let i = 0; i < IMAGES; i++) copyFileSync(IMAGE, join(folder, `img${String(i).padStart(4, '0')}.jpg`));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Live (not zombie) processes descending from `pid`, from /proc. */
function descendants(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] !== 'Z') parents.set(Number(entry), Number(fields[1]));
    } catch {
      // the process ended while we looked
    }
  }
  const found: number[] = [];
  const frontier = [pid];
  while (frontier.length > 0) {
    const parent = frontier.pop()!;
    for (const [child, ppid] of parents)
      if (ppid === parent) {
        found.push(child);
        frontier.push(child);
      }
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Total bytes of every file under `dir` (the run's outputs, whatever names the writer uses). */
function bytesUnder(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += bytesUnder(path);
    else if (entry.isFile()) total += existsSync(path) ? statSync(path).size : 0;
  }
  return total;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > HANG_GUARD_MS) throw new Error(`gave up waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('kill -9 of the CLI stops all of its work', () => {
  it(
    'with stderr a socket: the filtering child dies with the parent and the outputs stop growing',
    async () => {
      const out = join(work, 'socket-out');
      mkdirSync(out);
      const cli = spawn(
        process.execPath,
        [CLI, 'embed', folder, '--out', join(out, 'rows.npy'), '--batch', '1', '--quiet', '--model', MODEL],
        { env, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stderr = '';
      cli.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      cli.stdout.resume();
      const exited = new Promise((resolve) => cli.on('exit', resolve));
      // Wait for real work: the first rows on disk. --quiet, because an orphan whose stderr is gone would die
      // of EPIPE at its next progress line; a quiet one works on.
      await until(() => bytesUnder(out) > 0, 'the first output bytes');
      const workers = descendants(cli.pid!);
      expect(workers.length).toBeGreaterThan(0); // the filtering child, which this test is about
      process.kill(cli.pid!, 'SIGKILL');
      await exited;
      await until(() => workers.every((pid) => !alive(pid)), 'the child to end');
      const settled = bytesUnder(out);
      // Nothing of the run is left to write: two looks, with a pause between, agree.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(bytesUnder(out)).toBe(settled);
      // The run was killed after its first of 400 batches: an orphan would have gone on to write the final file.
      expect(existsSync(join(out, 'rows.npy'))).toBe(false);
      expect(stderr).not.toContain('artificially reduced');
    },
    2 * HANG_GUARD_MS,
  );

  it(
    'with stderr /dev/null or a pipe: one process, and no Dawn warning on the pipe',
    async () => {
      const out = join(work, 'pipe-out');
      mkdirSync(out);
      // /dev/null: the CLI must not start a child.
      const devNull = openSync('/dev/null', 'w');
      const cli = spawn(
        process.execPath,
        [CLI, 'embed', folder, '--out', join(out, 'rows.npy'), '--batch', '1', '--model', MODEL],
        { env, stdio: ['ignore', 'ignore', devNull] },
      );
      closeSync(devNull);
      const exited = new Promise((resolve) => cli.on('exit', resolve));
      await until(() => bytesUnder(out) > 0 || !alive(cli.pid!), 'the first output bytes');
      expect(
        descendants(cli.pid!).filter((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('main.js')),
      ).toEqual([]);
      process.kill(cli.pid!, 'SIGKILL');
      await exited;

      // A shell pipe (a FIFO, unlike Node's socket pairs): Dawn's lines are muted in place.
      const shell = spawn(
        'sh',
        [
          '-c',
          `"${process.execPath}" "${CLI}" embed "${folder}" --model "${MODEL}" --out "${join(out, 'piped.npy')}" 2>&1 >/dev/null | cat`,
        ],
        { env, stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let piped = '';
      shell.stdout.on('data', (chunk: Buffer) => (piped += chunk.toString()));
      const code = await new Promise((resolve) => shell.on('exit', resolve));
      expect(code).toBe(0);
      expect(piped).not.toContain('artificially reduced');
      // fd 2 was the pipe's only writer: it must work again after Dawn's call (the reader must not have seen an end).
      expect(piped).toMatch(new RegExp(`Embedded ${IMAGES} image`));
    },
    2 * HANG_GUARD_MS,
  );
});
