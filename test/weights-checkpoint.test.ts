import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { synthCommand } from '../src/cli/synth.js';
import { parseClipConfig } from '../src/model/config.js';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { synthesizeTensor } from '../src/io/synth.js';

const TINY = join(import.meta.dirname, 'fixtures', 'openclip-tiny', 'model');
const TINY_CONFIG = {
  model_cfg: {
    embed_dim: 16,
    vision_cfg: { image_size: 32, layers: 2, width: 64, head_width: 32, patch_size: 8 },
    text_cfg: { context_length: 16, vocab_size: 100, width: 32, heads: 2, layers: 3 },
  },
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'whylesion-ckpt-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function failure(folder: string): Promise<string> {
  const error = await openCheckpoint(folder).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(UserError);
  return (error as Error).message;
}

describe('checkpoint folders', () => {
  it('opens the tiny open_clip checkpoint and checks it', async () => {
    const checkpoint = await openCheckpoint(TINY);
    expect(checkpoint.config.embedDim).toBe(32);
    expect(checkpoint.weightsPath).toBe(join(TINY, 'open_clip_model.safetensors'));
    expect((checkpoint.rawConfig as { model_cfg: object }).model_cfg).toBeDefined();
    expect((await checkpoint.source.readF32('logit_scale'))[0]).toBeCloseTo(Math.log(100), 6);
    await checkpoint.source.close();
  });

  it('explains each broken folder', async () => {
    expect(await failure(join(dir, 'nowhere'))).toMatch(/the model folder .*nowhere does not exist/);
    const empty = join(dir, 'empty');
    await mkdir(empty);
    expect(await failure(empty)).toMatch(/empty has no open_clip_config\.json/);
    await writeFile(join(empty, 'open_clip_config.json'), '{"model_cfg": ');
    expect(await failure(empty)).toMatch(/open_clip_config\.json is not valid JSON; re-download it\./);
    await writeFile(
      join(empty, 'open_clip_config.json'),
      JSON.stringify({ model_cfg: { embed_dim: 8, vision_cfg: { timm_model_name: 'vit' } } }),
    );
    expect(await failure(empty)).toMatch(/unsupported settings: vision_cfg\.timm_model_name="vit"/);
    await writeFile(join(empty, 'open_clip_config.json'), JSON.stringify(TINY_CONFIG));
    expect(await failure(empty)).toMatch(
      /has no weights \(looked for open_clip_model\.safetensors and open_clip_pytorch_model\.bin\)/,
    );
    // Weights that do not fit the config: the tiny weights under a smaller config.
    await writeFile(
      join(empty, 'open_clip_model.safetensors'),
      await readFile(join(TINY, 'open_clip_model.safetensors')),
    );
    expect(await failure(empty)).toMatch(
      /open_clip_model\.safetensors does not match its config: tensors .*with the wrong shape \(positional_embedding is \[77,64\], expected \[16,32\]/,
    );
  });
});

describe('synthetic checkpoints', () => {
  it('writes the same bytes for the same seed, a loadable checkpoint, and different bytes for another seed', async () => {
    const configPath = join(dir, 'tiny_config.json');
    await writeFile(configPath, JSON.stringify(TINY_CONFIG));
    const write = async (seed: number, name: string) => {
      await synthCommand(['--config', configPath, '--seed', String(seed), '--out', join(dir, name)]);
      return readFile(join(dir, name, 'open_clip_model.safetensors'));
    };
    const [a, b, c] = [await write(7, 'a'), await write(7, 'b'), await write(8, 'c')];
    expect(a.equals(b)).toBe(true);
    expect(a.equals(c)).toBe(false);
    const checkpoint = await openCheckpoint(join(dir, 'a'));
    expect(checkpoint.config.text.layers).toBe(3);
    expect((await checkpoint.source.readF32('logit_scale'))[0]).toBe(Math.fround(Math.log(100)));
    const f16 = join(dir, 'half');
    await synthCommand(['--config', configPath, '--seed', '7', '--out', f16, '--dtype', 'f16']);
    const halfCheckpoint = await openCheckpoint(f16);
    expect(halfCheckpoint.source.tensors.get('visual.proj')?.dtype).toBe('F16');
    // f16 values are the f32 ones rounded: within half an f16 ulp.
    const full = await checkpoint.source.readF32('visual.proj');
    const rounded = await halfCheckpoint.source.readF32('visual.proj');
    for (let i = 0; i < full.length; i++)
      expect(Math.abs(rounded[i]! - full[i]!)).toBeLessThanOrEqual(Math.abs(full[i]!) * 2 ** -11 + 2 ** -25);
    await checkpoint.source.close();
    await halfCheckpoint.source.close();
  });

  it('scales tensors like open_clip initialisation', () => {
    const cfg = parseClipConfig(TINY_CONFIG);
    const stats = (name: string, shape: number[]) => {
      const values = synthesizeTensor(cfg, 3, name, shape);
      const mean = values.reduce((a, b) => a + b, 0) / values.length;
      const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length);
      return { mean, std };
    };
    // Sample std of n normals is within ~4/sqrt(2n) relative of the truth with overwhelming probability.
    const inProj = stats('visual.transformer.resblocks.0.attn.in_proj_weight', [192, 64]);
    expect(Math.abs(inProj.std / 64 ** -0.5 - 1)).toBeLessThan(4 / Math.sqrt(2 * 192 * 64));
    expect(Math.abs(inProj.mean)).toBeLessThan((4 * 64 ** -0.5) / Math.sqrt(192 * 64));
    const cProj = stats('transformer.resblocks.2.mlp.c_proj.weight', [32, 128]);
    expect(Math.abs(cProj.std / (32 ** -0.5 * 6 ** -0.5) - 1)).toBeLessThan(4 / Math.sqrt(2 * 32 * 128));
    const gain = stats('visual.ln_post.weight', [64]);
    expect(Math.abs(gain.mean - 1)).toBeLessThan(0.03);
    expect(gain.std).toBeGreaterThan(0.03);
    expect(gain.std).toBeLessThan(0.07);
    const token = stats('token_embedding.weight', [100, 32]);
    expect(Math.abs(token.std / 0.02 - 1)).toBeLessThan(4 / Math.sqrt(2 * 3200));
  });
});
