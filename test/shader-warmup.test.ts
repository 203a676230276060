// The first-run shader warm-up (src/api/shader-warmup.ts): when Mesa's on-disk shader cache is empty, classify
// compiles the image tower's shaders on a second device while the weights load. It must change no number, fill
// the cache the later runs read, and not happen once the cache holds anything.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { afterWarmup } from '../src/api/shader-warmup.js';
import { openClip, type EmbeddingModel } from '../src/families/index.js';
import { KernelPolicy } from '../src/kernels/policy.js';
import type { ClipConfig } from '../src/model/config.js';
import type { TensorSource } from '../src/model/tensor-source.js';
import { Gpu } from '../src/runtime/gpu.js';
import { platform } from '../src/platform/index.js';
import { CLI_ENV, runCli, TINY_IMAGES, TINY_MODEL } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'whylesion-warmup-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const LABELS = 'dark brown,bleeding,irregular shape';
const WARMED = /whylesion trace: .*image shaders compiled ahead \((\d+) pipelines on a second device\)/;

describe('freshShaderCache (Node)', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const name of [
      'MESA_SHADER_CACHE_DIR',
      'MESA_SHADER_CACHE_DISABLE',
      'XDG_CACHE_HOME',
      'LP_NATIVE_VECTOR_WIDTH',
    ]) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
  });

  it("is true for a MESA_SHADER_CACHE_DIR without Mesa's index, false once Mesa wrote one or with the cache off", () => {
    const dir = mkdtempSync(join(work, 'cache-'));
    process.env.MESA_SHADER_CACHE_DIR = dir;
    delete process.env.MESA_SHADER_CACHE_DISABLE;
    expect(platform.freshShaderCache()).toBe(true);
    writeFileSync(join(dir, 'index'), ''); // not where Mesa keeps it
    expect(platform.freshShaderCache()).toBe(true);
    mkdirSync(join(dir, 'mesa_shader_cache_db'));
    writeFileSync(join(dir, 'mesa_shader_cache_db', 'index'), '');
    expect(platform.freshShaderCache()).toBe(false);
    process.env.MESA_SHADER_CACHE_DISABLE = 'true';
    expect(platform.freshShaderCache()).toBe(false);
  });

  it("knows Mesa's other cache layouts: multi-file (Mesa 26.1's) and single-file", () => {
    delete process.env.MESA_SHADER_CACHE_DISABLE;
    for (const written of [join('mesa_shader_cache', 'index'), 'mesa_shader_cache_sf']) {
      const dir = mkdtempSync(join(work, 'layout-'));
      process.env.MESA_SHADER_CACHE_DIR = dir;
      mkdirSync(join(dir, 'mesa_shader_cache'));
      expect(platform.freshShaderCache()).toBe(true); // the folder alone: Mesa makes it before it writes anything
      if (written.endsWith('index')) writeFileSync(join(dir, written), '');
      else mkdirSync(join(dir, written));
      expect(platform.freshShaderCache()).toBe(false);
    }
  });

  it("reads the vector width's folder in $XDG_CACHE_HOME when no folder is named, where the engine points Mesa", () => {
    delete process.env.MESA_SHADER_CACHE_DIR;
    delete process.env.MESA_SHADER_CACHE_DISABLE;
    process.env.LP_NATIVE_VECTOR_WIDTH = '256';
    const xdg = mkdtempSync(join(work, 'xdg-'));
    process.env.XDG_CACHE_HOME = xdg;
    mkdirSync(join(xdg, 'mesa_shader_cache_db'));
    writeFileSync(join(xdg, 'mesa_shader_cache_db', 'index'), ''); // Mesa's shared folder: another width's code
    expect(platform.freshShaderCache()).toBe(true);
    mkdirSync(join(xdg, 'mesa_shader_cache_lp256', 'mesa_shader_cache_db'), { recursive: true });
    writeFileSync(join(xdg, 'mesa_shader_cache_lp256', 'mesa_shader_cache_db', 'index'), '');
    expect(platform.freshShaderCache()).toBe(false);
    process.env.LP_NATIVE_VECTOR_WIDTH = '128';
    expect(platform.freshShaderCache()).toBe(true);
  });
});

describe("open_clip's kernel twin", () => {
  /** The WGSL of every pipeline the image forward at batch 1 binds, for `config` with zero weights. */
  async function visionShaders(config: ClipConfig, dtype: 'f32' | 'f16'): Promise<string[]> {
    const gpu = await Gpu.create();
    try {
      const shapes = openClip.stateDict(config);
      const source: TensorSource = {
        tensors: new Map([...shapes].map(([name, shape]) => [name, { name, dtype: 'F32' as const, shape }])),
        readF32: async (name, out) => out ?? new Float32Array(shapes.get(name)!.reduce((a, b) => a * b, 1)),
        readF16: async (name, out) => out ?? new Uint16Array(shapes.get(name)!.reduce((a, b) => a * b, 1)),
        close: async () => undefined,
      };
      const model = await openClip.load(KernelPolicy.create(gpu), config, source, { dtype });
      await model.visionKernels(1);
      model.dispose();
      return [...(gpu as unknown as { pipelines: Map<string, unknown> }).pipelines.keys()].sort();
    } finally {
      gpu.destroy();
    }
  }

  it('binds the same shaders as the deeper model it stands for (f32, and f16 where the adapter has it)', async () => {
    const raw = JSON.parse(readFileSync(join(TINY_MODEL, 'open_clip_config.json'), 'utf8')) as {
      model_cfg: { vision_cfg: { layers: number }; text_cfg: { layers: number } };
    };
    raw.model_cfg.vision_cfg.layers = 4;
    raw.model_cfg.text_cfg.layers = 3;
    const config = openClip.parseConfig(raw);
    const twin = openClip.kernelTwin(config);
    expect(twin.vision.layers).toBeLessThan(config.vision.layers);
    const probe = await Gpu.create();
    const dtypes: ('f32' | 'f16')[] = probe.hasF16 ? ['f32', 'f16'] : ['f32'];
    probe.destroy();
    for (const dtype of dtypes) {
      const full = await visionShaders(config, dtype);
      expect(full.length).toBeGreaterThan(3);
      expect(await visionShaders(twin, dtype)).toEqual(full);
    }
  }, 600_000);
});

describe('afterWarmup', () => {
  it('holds image forwards until the warm-up settles, and passes text forwards at once', async () => {
    const calls: string[] = [];
    const model = {
      encodePixels: async () => {
        calls.push('image');
        return new Float32Array(1);
      },
      encodeTokens: async () => {
        calls.push('text');
        return new Float32Array(2);
      },
    } as unknown as EmbeddingModel;
    let release!: () => void;
    const gated = afterWarmup(model, new Promise<void>((resolve) => (release = resolve)));
    const image = gated.encodePixels(new Float32Array(3), 1);
    expect(await gated.encodeTokens(new Int32Array(1), 1)).toHaveLength(2);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(calls).toEqual(['text']);
    release();
    expect(await image).toHaveLength(1);
    expect(calls).toEqual(['text', 'image']);
  });
});

describe('classify on a first run', () => {
  it('compiles ahead into an empty shader cache, gives the same answer, and not again once the cache is filled', async () => {
    // No cache folder named: the engine gives Mesa one per vector width under $XDG_CACHE_HOME.
    const xdg = mkdtempSync(join(work, 'xdg-'));
    const env: NodeJS.ProcessEnv = {
      ...CLI_ENV,
      XDG_CACHE_HOME: xdg,
      MESA_SHADER_CACHE_DISABLE: '',
      LP_NATIVE_VECTOR_WIDTH: '256',
      WHYLESION_TRACE: '1',
    };
    delete env.MESA_SHADER_CACHE_DIR;
    const classify = () =>
      runCli(
        ['classify', join(TINY_IMAGES, 'lesion_q90.jpg'), '--labels', LABELS, '--model', TINY_MODEL, '--json'],
        env,
      );
    const first = await classify();
    expect(first.code).toBe(0);
    const warmed = first.stderr.match(WARMED);
    expect(warmed, first.stderr).not.toBeNull();
    expect(Number(warmed![1])).toBeGreaterThan(0);
    // Mesa's index in the width's folder, in the layout of this Mesa (db in Debian's 25.0.7, multi-file in 26.1),
    // and nothing in Mesa's shared folders
    const layouts = ['mesa_shader_cache_db', 'mesa_shader_cache'];
    const indexes = layouts.filter((layout) => existsSync(join(xdg, 'mesa_shader_cache_lp256', layout, 'index')));
    expect(indexes).toHaveLength(1);
    expect(layouts.filter((layout) => existsSync(join(xdg, layout)))).toEqual([]);

    const second = await classify();
    expect(second.code).toBe(0);
    expect(second.stderr).not.toMatch(WARMED);
    // Same numbers either way: the warm-up only compiles; the answer comes from the model's own device.
    expect(second.stdout).toBe(first.stdout);
    expect(first.stdout).toMatch(/bleeding/);
  }, 600_000);
});
