// `whylesion parity` on the open_clip tiny checkpoint: the shipped PyTorch reference against the engine.
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNpy } from '../src/io/npy.js';
import { CLI_ENV, relativeError, TINY, TINY_MODEL } from './helpers.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
const MODEL = TINY_MODEL;
const env = CLI_ENV;

/** Whether the reference can run here (scripts/test.sh installs torch and numpy for /usr/bin/python3). */
const torchMissing = ((): string | undefined => {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import torch, numpy'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return '/usr/bin/python3 has no torch/numpy (bash scripts/setup-webgpu.sh --with-python installs them)';
  }
})();

async function whylesion(
  args: string[],
  extraEnv: Record<string, string> = {},
): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run('node', [CLI, 'parity', ...args], {
      env: { ...env, ...extraEnv },
      maxBuffer: 64 << 20,
    });
    return { stdout, stderr, code: 0 };
  } catch (e) {
    const err = e as { stdout: string; stderr: string; code: number };
    return { stdout: err.stdout, stderr: err.stderr, code: err.code };
  }
}

/** A copy of a safetensors checkpoint folder with every F32 tensor whose name starts with `prefix` scaled by `factor`. */
function scaledCopy(from: string, to: string, prefixes: string[], factor: number): void {
  cpSync(from, to, { recursive: true });
  const path = join(to, 'open_clip_model.safetensors');
  const bytes = readFileSync(path);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<
    string,
    { dtype: string; data_offsets: [number, number] }
  >;
  let scaled = 0;
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__' || !prefixes.some((p) => name.startsWith(p))) continue;
    expect(t.dtype).toBe('F32');
    const start = 8 + headerLength + t.data_offsets[0];
    const values = new Float32Array(
      bytes.buffer.slice(bytes.byteOffset + start, bytes.byteOffset + 8 + headerLength + t.data_offsets[1]),
    );
    for (let i = 0; i < values.length; i++) values[i]! *= factor;
    Buffer.from(values.buffer).copy(bytes, start);
    scaled++;
  }
  expect(scaled).toBe(prefixes.length);
  writeFileSync(path, bytes);
}

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'whylesion-parity-test-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Report {
  steps: {
    tower: string;
    step: string;
    block: number | null;
    rows: string;
    maxAbs: number;
    relative: number;
    exceeds: boolean;
  }[];
  cosine: { image: number; text: number };
  first_failing: { tower: string; block: number | null; step: string } | null;
  pass: boolean;
}

describe('whylesion parity on the open_clip tiny checkpoint', () => {
  it('agrees block by block within 1e-4, cosine ≥ 0.99999, exit 0; --dump writes both sides with an index', async (ctx) => {
    if (torchMissing) ctx.skip(torchMissing);
    const dump = join(work, 'dump');
    const { stdout, stderr, code } = await whylesion(['--model', MODEL, '--json', '--dump', dump, '--batch', '2']);
    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout) as Report;
    expect(report.pass).toBe(true);
    expect(report.first_failing).toBeNull();
    expect(report.cosine.image).toBeGreaterThanOrEqual(0.99999);
    expect(report.cosine.text).toBeGreaterThanOrEqual(0.99999);
    // Both towers' two resblocks plus the steps around them, each measured (float32 rounding, not zero everywhere).
    expect(report.steps.filter((s) => s.block !== null).map((s) => `${s.tower}.${s.block}`)).toEqual([
      'image.0',
      'image.1',
      'text.0',
      'text.1',
    ]);
    for (const s of report.steps) expect(s.relative).toBeLessThanOrEqual(1e-4);
    expect(Math.max(...report.steps.map((s) => s.maxAbs))).toBeGreaterThan(0);

    const index = JSON.parse(readFileSync(join(dump, 'index.json'), 'utf8')) as Report & {
      steps: { engineFile: string; referenceFile: string; relative: number }[];
    };
    expect(index.steps).toHaveLength(report.steps.length);
    for (const s of index.steps) {
      const engine = readNpy(readFileSync(join(dump, s.engineFile)));
      const reference = readNpy(readFileSync(join(dump, s.referenceFile)));
      expect(engine.data.length).toBe(reference.data.length);
      // The files hold what was compared: recomputing the figure from them gives the reported one.
      expect(relativeError(engine.data as Float32Array, reference.data as Float32Array)).toBeCloseTo(s.relative, 12);
    }
    expect(readNpy(readFileSync(join(dump, 'pixels.npy'))).shape).toEqual([2, 3, 224, 224]);
    expect(existsSync(join(dump, 'tokens.json'))).toBe(true);
  });

  it('names the block whose MLP weights the reference copy scales by 1.01, and exits 1', async (ctx) => {
    if (torchMissing) ctx.skip(torchMissing);
    const scaled = join(work, 'scaled');
    scaledCopy(
      MODEL,
      scaled,
      ['transformer.resblocks.1.mlp.c_fc.weight', 'transformer.resblocks.1.mlp.c_proj.weight'],
      1.01,
    );
    const { stdout, stderr, code } = await whylesion([
      '--model',
      MODEL,
      '--reference-model',
      scaled,
      '--json',
      '--image',
      fileURLToPath(new URL('images/lesion_rgb.png', TINY)),
    ]);
    expect(code, stderr).toBe(1);
    const report = JSON.parse(stdout) as Report;
    expect(report.first_failing).toEqual({ tower: 'text', block: 1, step: 'resblocks.1' });
    const text0 = report.steps.find((s) => s.tower === 'text' && s.block === 0)!;
    const text1 = report.steps.find((s) => s.tower === 'text' && s.block === 1)!;
    expect(text0.exceeds).toBe(false);
    expect(text1.relative).toBeGreaterThan(1e-3);
    expect(report.steps.filter((s) => s.tower === 'image').every((s) => !s.exceeds)).toBe(true);
  });

  it('a Python that cannot run, or lacks torch, is one sentence naming what to install, exit 1', async () => {
    const missing = await whylesion(['--model', MODEL, '--python', join(work, 'no-such-python')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toMatch(
      /no-such-python was not found; install them \(apt-get install python3-torch python3-numpy, or pip install torch numpy\)/,
    );
    // An isolated interpreter without site-packages: a real Python with no torch or numpy.
    const bare = join(work, 'bare-python');
    writeFileSync(bare, '#!/bin/sh\nexec /usr/bin/python3 -I -S "$@"\n', { mode: 0o755 });
    const noTorch = await whylesion(['--model', MODEL, '--python', bare]);
    expect(noTorch.code).toBe(1);
    expect(noTorch.stderr.trim().split('\n')).toHaveLength(1);
    expect(noTorch.stderr).toContain(
      `${bare} has no torch and numpy; install them (apt-get install python3-torch python3-numpy, or pip install torch numpy)`,
    );
  });
});

const KNOBS = fileURLToPath(new URL('fixtures/openclip-knobs/', import.meta.url));

/** `whylesion parity --json` on a knob fixture with its own token rows (its vocabulary has 1000 ids). */
async function knobParity(
  name: string,
  options: { referenceModel?: string; dump?: string } = {},
): Promise<{ code: number; report: Report }> {
  const args = ['--model', join(KNOBS, name), '--tokens', join(KNOBS, name, 'tokens.json'), '--json'];
  if (options.referenceModel) args.push('--reference-model', options.referenceModel);
  if (options.dump) args.push('--dump', options.dump);
  const { stdout, stderr, code } = await whylesion([
    ...args,
    '--image',
    fileURLToPath(new URL('images/lesion_rgb.png', TINY)),
  ]);
  if (!stdout) throw new Error(stderr);
  return { code, report: JSON.parse(stdout) as Report };
}

describe('whylesion parity on open_clip knob layouts (test/fixtures/openclip-knobs)', () => {
  // Each step's figure is float32 rounding (measured ≤ 2e-6 relative); the steps are those the layout has.
  const cases: { name: string; steps: string[]; pooled: { image: string; text: string } }[] = [
    {
      // Layer scale (real gammas in the reference, folded at load in the engine), patch-mean pooling after
      // ln_post, eps 1e-6, proj_bias.
      name: 'ls-avg-projbias',
      steps: ['ln_pre', 'resblocks.0', 'resblocks.1', 'ln_post', 'embedding'],
      pooled: { image: 'mean of the patch tokens', text: 'EOT token' },
    },
    {
      // custom_text (text.* weights) with embed_cls and pad_id: the appended class token, its masked attention.
      name: 'customtext-embedcls',
      steps: ['ln_pre', 'resblocks.0', 'resblocks.1', 'ln_post', 'embedding'],
      pooled: { image: 'class token', text: 'class token (embed_cls)' },
    },
    {
      // no_ln_pre, patch mean then ln_post (final_ln_after_pool), QuickGELU; no causal mask, last-row pooling.
      name: 'nolnpre-avgafter-last',
      steps: ['patch_embed', 'resblocks.0', 'resblocks.1', 'ln_post', 'embedding'],
      pooled: { image: 'mean of the patch tokens', text: 'last token' },
    },
  ];
  for (const { name, steps, pooled } of cases) {
    it(`${name}: every step within 1e-4, cosine ≥ 0.99999, exit 0`, async (ctx) => {
      if (torchMissing) ctx.skip(torchMissing);
      const dump = join(work, `dump-${name}`);
      const { code, report } = await knobParity(name, { dump });
      expect(code).toBe(0);
      expect(report.pass).toBe(true);
      expect(report.steps.filter((s) => s.tower === 'image').map((s) => s.step)).toEqual(steps);
      expect(report.steps.find((s) => s.tower === 'image' && s.step === 'ln_post')?.rows).toBe(pooled.image);
      expect(report.steps.find((s) => s.tower === 'text' && s.step === 'ln_final')?.rows).toBe(pooled.text);
      for (const s of report.steps) expect(s.relative, `${s.tower} ${s.step}`).toBeLessThanOrEqual(1e-4);
      expect(Math.max(...report.steps.map((s) => s.maxAbs))).toBeGreaterThan(0);
      expect(report.cosine.image).toBeGreaterThanOrEqual(0.99999);
      expect(report.cosine.text).toBeGreaterThanOrEqual(0.99999);
      // --dump holds, for this layout too, exactly the rows each figure was computed from.
      const index = JSON.parse(readFileSync(join(dump, 'index.json'), 'utf8')) as {
        steps: { engineFile: string; referenceFile: string; relative: number }[];
      };
      expect(index.steps).toHaveLength(report.steps.length);
      for (const s of index.steps) {
        const engine = readNpy(readFileSync(join(dump, s.engineFile)));
        const reference = readNpy(readFileSync(join(dump, s.referenceFile)));
        expect(relativeError(engine.data as Float32Array, reference.data as Float32Array)).toBeCloseTo(s.relative, 12);
      }
    });
  }

  it('a reference whose config flips final_ln_after_pool fails first at the image ln_post step, exit 1', async (ctx) => {
    if (torchMissing) ctx.skip(torchMissing);
    const flipped = join(work, 'flipped-final-ln');
    cpSync(join(KNOBS, 'nolnpre-avgafter-last'), flipped, { recursive: true });
    const configPath = join(flipped, 'open_clip_config.json');
    const config = JSON.parse(readFileSync(configPath, 'utf8')) as {
      model_cfg: { vision_cfg: { final_ln_after_pool: boolean } };
    };
    config.model_cfg.vision_cfg.final_ln_after_pool = false;
    writeFileSync(configPath, JSON.stringify(config));
    const { code, report } = await knobParity('nolnpre-avgafter-last', { referenceModel: flipped });
    expect(code).toBe(1);
    expect(report.first_failing).toEqual({ tower: 'image', block: null, step: 'ln_post' });
    expect(report.steps.filter((s) => s.tower === 'image' && s.block !== null).every((s) => !s.exceeds)).toBe(true);
    expect(report.steps.filter((s) => s.tower === 'text').every((s) => !s.exceeds)).toBe(true);
  });

  it('--tokens rows that are not the context length are one sentence, exit 1', async (ctx) => {
    if (torchMissing) ctx.skip(torchMissing);
    const short = join(work, 'short-tokens.json');
    writeFileSync(short, JSON.stringify({ tokens: [[998, 5, 999]] }));
    const { stdout, stderr, code } = await whylesion(['--model', join(KNOBS, 'ls-avg-projbias'), '--tokens', short]);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toContain(`--tokens ${short} must hold a non-empty list of rows of 16 integer token ids`);
  });
});
