import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { readNpy } from '../src/io/npy.js';

/** Seeded PRNG (mulberry32) with normal samples, so every test input is reproducible. */
export function rng(seed: number): { uniform: () => number; normal: () => number } {
  let s = seed >>> 0;
  const uniform = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = (): number => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  return { uniform, normal };
}

export function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r.normal() * scale;
  return a;
}

/** max |a−b| / max(max|b|, tiny): the error relative to the output's magnitude. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let diff = 0;
  let mag = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    mag = Math.max(mag, Math.abs(b[i]!));
  }
  return diff / Math.max(mag, 1e-30);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
  return diff;
}

/** The tiny open_clip checkpoint with what real open_clip 2.24 computed from it (fixtures/openclip-tiny/README.md). */
export const TINY = new URL('fixtures/openclip-tiny/', import.meta.url);
/** The CLIP vocabulary and KnoBo's lists, as the package ships them. */
export const VOCAB_URL = new URL('../assets/bpe_simple_vocab_16e6.txt.gz', import.meta.url);
export const KNOBO_URL = new URL('../assets/knobo/', import.meta.url);

/** The tiny checkpoint's folder and its reference images, as paths for the CLI. */
export const TINY_MODEL = fileURLToPath(new URL('model', TINY));
export const TINY_IMAGES = fileURLToPath(new URL('images', TINY));

/**
 * openclip-tiny converted to transformers' CLIPModel layout by reference/make_hf_clip.py (numpy only). Made at
 * test time, once per version of the converter and the checkpoint, rather than committed: its 13.7 MB of random
 * floats would double the repository. The expected outputs stay openclip-tiny's (real open_clip 2.24).
 */
export function hfClipTiny(): string {
  const script = fileURLToPath(new URL('../reference/make_hf_clip.py', import.meta.url));
  const sources = [script, fileURLToPath(new URL('../reference/safetensors_io.py', import.meta.url))];
  const inputs = [
    ...sources,
    join(TINY_MODEL, 'open_clip_config.json'),
    join(TINY_MODEL, 'open_clip_model.safetensors'),
  ];
  const hash = createHash('sha256');
  for (const file of inputs) hash.update(readFileSync(file));
  const dir = join(tmpdir(), `whylesion-test-hf-clip-tiny-${hash.digest('hex').slice(0, 16)}`);
  if (existsSync(dir)) return dir;
  // Test files run in parallel workers: each converts into its own folder and the first rename wins.
  const partial = `${dir}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  execFileSync('/usr/bin/python3', [
    script,
    '--model',
    TINY_MODEL,
    '--vocab',
    fileURLToPath(VOCAB_URL),
    '--out',
    partial,
  ]);
  try {
    renameSync(partial, dir);
  } catch (error) {
    if (!existsSync(dir)) throw error;
    rmSync(partial, { recursive: true, force: true });
  }
  return dir;
}
/** The environment CLI tests run with: the bundled vocabulary, and a runtime folder for Dawn. */
export const CLI_ENV: NodeJS.ProcessEnv = {
  ...process.env,
  WHYLESION_BPE_VOCAB: fileURLToPath(VOCAB_URL),
  XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp',
};

/** The synthetic two-class dataset (fixtures/eval-synth), split into train/val/test folders. */
export const EVAL_SYNTH = fileURLToPath(new URL('fixtures/eval-synth/images', import.meta.url));

/** Copies the first `counts[split]` images of each class of EVAL_SYNTH into `dataset`: a small dataset folder. */
export function sliceEvalDataset(dataset: string, counts: { train: number; val: number; test: number }): string {
  for (const split of ['train', 'val', 'test'] as const) {
    for (const name of ['melanocytic nevi', 'melanoma']) {
      mkdirSync(join(dataset, split, name), { recursive: true });
      for (const file of readdirSync(join(EVAL_SYNTH, split, name))
        .sort()
        .slice(0, counts[split])) {
        cpSync(join(EVAL_SYNTH, split, name, file), join(dataset, split, name, file));
      }
    }
  }
  return dataset;
}

export function loadNpy(url: URL): { shape: number[]; data: Float32Array } {
  const a = readNpy(readFileSync(url), url.pathname);
  if (a.dtype !== 'float32') throw new Error(`${url.pathname}: expected float32`);
  return a;
}

const execFileAsync = promisify(execFile);

/** Runs the built CLI (dist/) with these arguments and environment; a non-zero exit is returned, not thrown. */
export async function runCli(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ stdout: string; stderr: string; code: number }> {
  const cli = new URL('../dist/src/cli/main.js', import.meta.url).pathname;
  try {
    const { stdout, stderr } = await execFileAsync('node', [cli, ...args], { env, maxBuffer: 64 << 20 });
    return { stdout, stderr, code: 0 };
  } catch (e) {
    const err = e as { stdout: string; stderr: string; code: number };
    return { stdout: err.stdout, stderr: err.stderr, code: err.code };
  }
}
