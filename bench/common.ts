import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { synthCommand } from '../src/cli/synth.js';

/** The repository root, whether this runs from bench/ or from dist/bench/. */
export const REPO = ((): string => {
  let dir = new URL('.', import.meta.url).pathname;
  while (!existsSync(join(dir, 'package.json'))) dir = join(dir, '..');
  return dir.replace(/\/$/, '');
})();
export const PYTHON = process.env.WHYLESION_TORCH_PYTHON ?? '/usr/bin/python3';
/** The plain-PyTorch reference forward (reference/README.md). */
export const REFERENCE_SCRIPT = join(REPO, 'reference/clip_reference.py');

/** A machine description for result tables: CPU model, cores, adapter. */
export function machine(adapter: {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
}): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const gpu = [adapter.vendor, adapter.architecture, adapter.device, adapter.description].filter(Boolean).join(' / ');
  return `${cpu} (${cpus().length} cores); WebGPU: ${gpu}`;
}

/** The CPU's SIMD flags (AVX-512 or not decides llvmpipe's vector width): every bench result records them. */
export function simdFlags(): string[] {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('flags'));
    return line
      ? line
          .slice(line.indexOf(':') + 1)
          .trim()
          .split(/\s+/)
          .filter((f) => /^(sse4_2|avx|avx2|fma|f16c|avx512\w*|amx\w*)$/.test(f))
      : [];
  } catch {
    return [];
  }
}

/** weights/synth-<config>-<dtype>-seed<seed>/, written once by `whylesion synth` and reused. */
export async function syntheticCheckpoint(config: string, seed: number, dtype: 'f32' | 'f16'): Promise<string> {
  const dir = join(REPO, 'weights', `synth-${config.replace(/[^\w.-]+/g, '_')}-${dtype}-seed${seed}`);
  if (!existsSync(join(dir, 'open_clip_model.safetensors'))) {
    console.error(`synthesizing ${config} (${dtype}, seed ${seed}) into ${dir} ...`);
    await synthCommand(['--config', config, '--seed', String(seed), '--out', dir, '--dtype', dtype]);
  }
  return dir;
}

/** Runs the plain-PyTorch reference forward; returns its --timing JSON. */
export interface ReferenceTiming {
  image_seconds?: number;
  images?: number;
  text_seconds?: number;
  texts?: number;
  threads: number;
  /** 'cpu' or the CUDA device's name; the torch version. */
  device?: string;
  torch?: string;
  /** With --autocast-fp16 on CUDA. */
  image_seconds_autocast_fp16?: number;
  text_seconds_autocast_fp16?: number;
}

export function runReference(args: string[]): ReferenceTiming {
  const out = execFileSync(PYTHON, [REFERENCE_SCRIPT, ...args, '--timing', '--threads', String(cpus().length)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 26,
  });
  return JSON.parse(out.trim().split('\n').pop()!);
}

export function writeResult(name: string, data: unknown): string {
  const dir = join(REPO, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.json`);
  writeFileSync(path, `${JSON.stringify(data, null, 2)}\n`);
  return path;
}

export function flag(argv: string[], name: string, fallback: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
}

/** The model card's example labels: the prompts every bench encodes. */
export const PROMPTS = ['dark brown', 'bleeding', 'irregular shape'];

/** Seeded pixels in [-2, 2) for `images` images of imageSize² (the same numbers in every bench and run). */
export function benchPixels(images: number, imageSize: number): Float32Array {
  const pixels = new Float32Array(images * 3 * imageSize * imageSize);
  let seed = 1;
  for (let i = 0; i < pixels.length; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    pixels[i] = (seed / 2 ** 32) * 4 - 2;
  }
  return pixels;
}
