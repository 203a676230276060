// transformers' CLIPModel layout (openclip-tiny converted at test time, see hfClipTiny(), by
// reference/make_hf_clip.py with the names of transformers' convert_clip_original_pytorch_to_hf.py) must give
// what real open_clip 2.24 computed from the checkpoint it came from.
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type WhyLesionModel } from '../src/api/model.js';
import { transformersPreprocessing } from '../src/image/hf-preprocessor.js';
import { decodeImage, preprocessDecoded, preprocessImage, type DecodedImage } from '../src/image/index.js';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { HfClipTensorSource, openClipConfigFromHf } from '../src/io/hf-clip.js';
import { SafetensorsFile } from '../src/io/source.js';
import type { TensorSource } from '../src/io/tensor-source.js';
import { parseClipConfig } from '../src/model/config.js';
import { loadTokenizer } from '../src/tokenizer/load.js';
import { CLI_ENV, hfClipTiny, loadNpy, maxAbsDiff, TINY, TINY_MODEL, VOCAB_URL } from './helpers.js';

const HF_TINY = hfClipTiny();
const cases = JSON.parse(readFileSync(new URL('cases.json', TINY), 'utf8')) as {
  images: string[];
  texts: string[];
  tokens: number[][];
};
const hfConfig = JSON.parse(readFileSync(join(HF_TINY, 'config.json'), 'utf8')) as Record<string, unknown>;
const hfPreprocessor = JSON.parse(readFileSync(join(HF_TINY, 'preprocessor_config.json'), 'utf8')) as Record<
  string,
  unknown
>;
const E = 32;

function normalizeRows(rows: Float32Array[]): Float32Array {
  const out = new Float32Array(rows.length * E);
  rows.forEach((row, r) => {
    const n = Math.hypot(...row);
    out.set(
      row.map((v) => v / n),
      r * E,
    );
  });
  return out;
}

const expectedPixels = (image: string) =>
  loadNpy(new URL(`expected/pixels224_${image.replace(/\.\w+$/, '')}.npy`, TINY)).data;

/** Every tensor of `a` has the same name, shape and float32 bits in `b`, and the reverse. */
async function expectSameTensors(a: TensorSource, b: TensorSource): Promise<number> {
  expect([...a.tensors.keys()].sort()).toEqual([...b.tensors.keys()].sort());
  for (const [name, info] of a.tensors) {
    expect(info.shape, name).toEqual(b.tensors.get(name)!.shape);
    const bytes = (x: Float32Array | Uint16Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
    // Raw bytes: bit for bit, and fast on the 3M-element token embedding.
    expect(bytes(await a.readF32(name)).equals(bytes(await b.readF32(name))), name).toBe(true);
    expect(bytes(await a.readF16(name)).equals(bytes(await b.readF16(name))), name).toBe(true);
  }
  return a.tensors.size;
}

describe('the transformers layout read as open_clip', () => {
  it('config.json becomes the open_clip config it was converted from', () => {
    const openClip = JSON.parse(readFileSync(join(TINY_MODEL, 'open_clip_config.json'), 'utf8'));
    const mapped = openClipConfigFromHf(hfConfig, 'config.json', hfPreprocessor);
    expect(parseClipConfig(mapped)).toEqual(parseClipConfig(openClip));
  });

  it('reads legacy configs: eos_token_id 2 (argmax pooling), text_config_dict over text_config, QuickGELU', () => {
    const text = hfConfig.text_config as Record<string, unknown>;
    const vision = hfConfig.vision_config as Record<string, unknown>;
    const legacy = {
      ...hfConfig,
      text_config: { ...text, eos_token_id: 2, hidden_act: 'quick_gelu', hidden_size: 512, num_attention_heads: 8 },
      text_config_dict: { hidden_size: 64, num_attention_heads: 2 },
      vision_config: { ...vision, hidden_act: 'quick_gelu' },
      vision_config_dict: null,
    };
    const config = parseClipConfig(openClipConfigFromHf(legacy, 'config.json'));
    expect(config.quickGelu).toBe(true);
    expect(config.text).toMatchObject({ width: 64, heads: 2, layers: 2, contextLength: 77 });
    expect(config.vision).toMatchObject({ width: 64, heads: 2, headWidth: 32, patchSize: 14, imageSize: 224 });
  });

  it('every tensor, renamed, joined (q/k/v) and transposed (projections), equals the open_clip tensor bit for bit', async () => {
    const checkpoint = await openCheckpoint(HF_TINY);
    const original = await SafetensorsFile.open(join(TINY_MODEL, 'open_clip_model.safetensors'));
    try {
      expect(await expectSameTensors(checkpoint.source, original)).toBe(62);
      // The I64 position_ids buffers older transformers saved are skipped, not refused.
      expect(checkpoint.vocabPath).toBe(HF_TINY);
      expect(checkpoint.preprocessor?.what).toBe(join(HF_TINY, 'preprocessor_config.json'));
    } finally {
      await checkpoint.source.close();
      await original.close();
    }
  });

  it('pytorch_model.bin (torch.save of the same state dict, int64 position_ids included) converts to the same tensors', async (ctx) => {
    try {
      execFileSync('/usr/bin/python3', ['-c', 'import torch, numpy'], { stdio: 'ignore' });
    } catch {
      ctx.skip('/usr/bin/python3 has no torch/numpy (bash scripts/setup-webgpu.sh --with-python installs them)');
    }
    const dir = mkdtempSync(join(tmpdir(), 'whylesion-hf-bin-'));
    try {
      cpSync(HF_TINY, dir, { recursive: true });
      unlinkSync(join(dir, 'model.safetensors'));
      execFileSync('/usr/bin/python3', [
        fileURLToPath(new URL('../reference/make_hf_clip.py', import.meta.url)),
        '--model',
        TINY_MODEL,
        '--vocab',
        fileURLToPath(VOCAB_URL),
        '--out',
        dir,
        '--bin-only',
      ]);
      const checkpoint = await openCheckpoint(dir);
      const original = await SafetensorsFile.open(join(TINY_MODEL, 'open_clip_model.safetensors'));
      try {
        expect(checkpoint.weightsPath).toBe(join(dir, 'model.safetensors'));
        await expectSameTensors(checkpoint.source, original);
      } finally {
        await checkpoint.source.close();
        await original.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the tokenizer from vocab.json + merges.txt', () => {
  const tricky = [
    ...cases.texts,
    "it's   DOESN'T   we'll",
    'café naïve ＩＴ’Ｓ ﬁne &amp; cafÃ©',
    '日本語のテキスト 🙂👍🏽',
    '<start_of_text>x<end_of_text>',
    'a'.repeat(300),
    '12,345.678 — 3rd-degree 50%',
    '\u0000\u200b\ttabs\nnew lines',
  ];

  it('gives the ids of the bundled vocabulary and of open_clip', async () => {
    const hf = await loadTokenizer({ vocabPath: HF_TINY });
    const bundled = await loadTokenizer({ vocabPath: fileURLToPath(VOCAB_URL) });
    expect(Array.from(hf.tokenize(cases.texts))).toEqual(cases.tokens.flat());
    expect(Array.from(hf.tokenize(tricky))).toEqual(Array.from(bundled.tokenize(tricky)));
  });
});

describe("transformers' CLIPImageProcessor steps", () => {
  const steps = transformersPreprocessing(hfPreprocessor, 'preprocessor_config.json', 224);

  it('equal open_clip pixels where the center crops agree, and one row off where they do not', async () => {
    for (const image of cases.images) {
      const bytes = new Uint8Array(readFileSync(new URL(`images/${image}`, TINY)));
      const got = await preprocessImage(bytes, steps, image);
      const want = expectedPixels(image);
      if (image !== 'lesion_portrait.png') {
        expect(maxAbsDiff(got, want), image).toBe(0);
        continue;
      }
      // 180x260 resizes to 224x323: torchvision crops from round(49.5) = 50, transformers from 99 // 2 = 49.
      const shifted = preprocessDecoded(await decodeImage(bytes, image), { size: 224 });
      expect(maxAbsDiff(shifted, want)).toBe(0);
      const rowsOff = (a: Float32Array, b: Float32Array, dy: number) => {
        let worst = 0;
        for (let c = 0; c < 3; c++)
          for (let y = 1; y < 224; y++)
            for (let x = 0; x < 224; x++)
              worst = Math.max(worst, Math.abs(a[(c * 224 + y) * 224 + x]! - b[(c * 224 + y - dy) * 224 + x]!));
        return worst;
      };
      expect(rowsOff(got, want, 1)).toBe(0);
      expect(maxAbsDiff(got, want)).toBeGreaterThan(0.01);
    }
  });

  it('convert RGBA to RGB before resizing (open_clip resizes premultiplied, then drops alpha)', () => {
    const width = 37;
    const height = 29;
    const data = new Uint8Array(width * height * 4);
    for (let i = 0; i < data.length; i++) data[i] = (i * 97 + ((i * i) >> 3)) & 255;
    const rgba: DecodedImage = { width, height, mode: 'RGBA', data };
    const rgb = new Uint8Array(width * height * 3);
    for (let p = 0; p < width * height; p++) rgb.set(data.subarray(p * 4, p * 4 + 3), p * 3);
    const size = { size: 16 };
    const steps16 = transformersPreprocessing(
      { ...hfPreprocessor, size: { shortest_edge: 16 }, crop_size: { height: 16, width: 16 } },
      'p',
      16,
    );
    // 37x29 -> 20x16: both crop from 2, so only the order of convert and resize differs.
    expect(
      maxAbsDiff(preprocessDecoded(rgba, steps16), preprocessDecoded({ width, height, mode: 'RGB', data: rgb }, size)),
    ).toBe(0);
    expect(maxAbsDiff(preprocessDecoded(rgba, steps16), preprocessDecoded(rgba, size))).toBeGreaterThan(0.01);
  });

  it('read the older integer size and crop_size and the defaults', () => {
    const old = transformersPreprocessing(
      {
        crop_size: 224,
        do_center_crop: true,
        do_normalize: true,
        do_resize: true,
        feature_extractor_type: 'CLIPFeatureExtractor',
        resample: 3,
        size: 224,
      },
      'p',
      224,
    );
    expect(old.transformers).toEqual({
      resize: { shortestEdge: 224 },
      crop: { width: 224, height: 224 },
      convertRgbFirst: true,
      rescaleFactor: 1 / 255,
    });
    expect(transformersPreprocessing({}, 'p', 224)).toEqual(old);
  });
});

describe('the transformers fixture end to end (loadModel on the folder)', () => {
  let model: WhyLesionModel;
  beforeAll(async () => {
    model = await loadModel(HF_TINY);
  });
  afterAll(() => model?.dispose());

  it("image embeddings from open_clip's pixels equal real open_clip's", async () => {
    const pixels = cases.images.map(expectedPixels);
    const batch = new Float32Array(pixels.length * 3 * 224 * 224);
    pixels.forEach((p, i) => {
      batch.set(p, i * p.length);
    });
    const got = normalizeRows(await model.encodePixels(batch, pixels.length));
    const error = maxAbsDiff(got, loadNpy(new URL('expected/image_embeddings.npy', TINY)).data);
    console.log(`hf-clip-tiny image embeddings: max |diff| ${error.toExponential(2)}`);
    expect(error).toBeLessThanOrEqual(1e-5);
  });

  it("image embeddings from the files, through preprocessor_config.json, equal open_clip's where the pixels agree", async () => {
    const same = cases.images.filter((name) => name !== 'lesion_portrait.png');
    const got = normalizeRows(
      await model.encodeImage(same.map((name) => fileURLToPath(new URL(`images/${name}`, TINY)))),
    );
    const all = loadNpy(new URL('expected/image_embeddings.npy', TINY)).data;
    const want = new Float32Array(
      same.flatMap((name) =>
        Array.from(all.subarray(cases.images.indexOf(name) * E, (cases.images.indexOf(name) + 1) * E)),
      ),
    );
    expect(maxAbsDiff(got, want)).toBeLessThanOrEqual(1e-5);
  });

  it("text embeddings, tokenized with the folder's vocab.json + merges.txt, equal real open_clip's", async () => {
    const got = normalizeRows(await model.encodeText(cases.texts));
    const error = maxAbsDiff(got, loadNpy(new URL('expected/text_embeddings.npy', TINY)).data);
    console.log(`hf-clip-tiny text embeddings: max |diff| ${error.toExponential(2)}`);
    expect(error).toBeLessThanOrEqual(1e-5);
    expect(model.logitScale).toBeCloseTo(100, 4);
  });
});

describe('refusals, in one sentence', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'whylesion-hf-refuse-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A copy of the fixture's small files with config.json (and preprocessor_config.json) changed. */
  function folder(name: string, config: unknown, preprocessor: unknown = hfPreprocessor): string {
    const path = join(dir, name);
    cpSync(HF_TINY, path, { recursive: true, filter: (src) => !src.endsWith('.safetensors') });
    writeFileSync(join(path, 'config.json'), JSON.stringify(config));
    writeFileSync(join(path, 'preprocessor_config.json'), JSON.stringify(preprocessor));
    return path;
  }
  const text = hfConfig.text_config as Record<string, unknown>;

  it.each([
    [
      'another model_type',
      { model_type: 'siglip' },
      /describes a transformers "siglip" model, not CLIP; whylesion reads/,
    ],
    [
      'an eos_token_id that is not the largest id',
      { ...hfConfig, text_config: { ...text, eos_token_id: 7 } },
      /eos_token_id=7: transformers pools at its first occurrence, which whylesion's argmax pooling equals only for the largest id \(49407\) or the legacy 2\./,
    ],
    [
      'different activations per tower',
      { ...hfConfig, text_config: { ...text, hidden_act: 'quick_gelu' } },
      /has hidden_act "quick_gelu" \(text\) and "gelu" \(vision\)/,
    ],
  ])('%s', async (_what, config, message) => {
    const error = await openCheckpoint(folder(`c${Math.random()}`, config)).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).name).toBe('UserError');
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message.trim().split(/\.\s/).length).toBe(1);
  });

  it('a checkpoint missing one of its transformers tensors names it', async () => {
    const file = await SafetensorsFile.open(join(HF_TINY, 'model.safetensors'), { skipNonFloat: () => true });
    try {
      const missing = 'text_model.encoder.layers.1.self_attn.k_proj.bias';
      const tensors = new Map([...file.tensors].filter(([name]) => name !== missing));
      const source: TensorSource = {
        ...file,
        tensors,
        readF32: file.readF32,
        readF16: file.readF16,
        close: file.close,
      };
      expect(() => new HfClipTensorSource(source, { vision: 2, text: 2 })).toThrow(
        `${join(HF_TINY, 'model.safetensors')} has no tensor '${missing}'; check that it is a transformers CLIPModel checkpoint for this config.json.`,
      );
    } finally {
      await file.close();
    }
  });

  it('a folder with config.json but no weights', async () => {
    await expect(openCheckpoint(folder('noweights', hfConfig))).rejects.toThrow(
      /has no weights \(looked for model\.safetensors and pytorch_model\.bin\); download them beside config\.json\./,
    );
  });

  it.each([
    ['a resample other than bicubic', { resample: 2 }, /has resample=2, not bicubic \(3\)/],
    [
      'no resize',
      { do_resize: false },
      /has do_resize=false; whylesion follows CLIPImageProcessor's bicubic resize and center crop\./,
    ],
    [
      'no crop after a shortest-edge resize',
      { do_center_crop: false },
      /gives images of any size, but the model takes 224x224/,
    ],
    [
      'a crop of another size than the model',
      { crop_size: { height: 256, width: 256 } },
      /crops 256x256 out of images resized to a 224-pixel side/,
    ],
    [
      'an output of another size',
      { size: { shortest_edge: 256 }, crop_size: 256 },
      /gives 256x256, but the model takes 224x224/,
    ],
    [
      'the torchvision-based fast processor',
      { image_processor_type: 'CLIPImageProcessorFast' },
      /names the image processor "CLIPImageProcessorFast"/,
    ],
  ])('preprocessor_config.json with %s', (_what, change, message) => {
    expect(() => transformersPreprocessing({ ...hfPreprocessor, ...change }, 'preprocessor_config.json', 224)).toThrow(
      message,
    );
  });
});

describe('whylesion parity with a transformers folder', () => {
  const cli = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
  const parity = async (args: string[]) =>
    promisify(execFile)('node', [cli, 'parity', '--json', ...args], { env: CLI_ENV, maxBuffer: 64 << 20 }).then(
      ({ stdout }) => ({ stdout, stderr: '', code: 0 }),
      (e: { stdout: string; stderr: string; code: number }) => e,
    );

  it('engine on the transformers layout, PyTorch reference on the open_clip checkpoint it came from: they agree; the reference alone refuses the layout', async (ctx) => {
    try {
      execFileSync('/usr/bin/python3', ['-c', 'import torch, numpy'], { stdio: 'ignore' });
    } catch {
      ctx.skip('/usr/bin/python3 has no torch/numpy (bash scripts/setup-webgpu.sh --with-python installs them)');
    }
    const refused = await parity(['--model', HF_TINY]);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toBe(
      `whylesion: The PyTorch reference reads open_clip checkpoints, and ${HF_TINY} is a transformers CLIP one; pass the open_clip checkpoint it came from with --reference-model DIR.`,
    );
    const { stdout, stderr, code } = await parity(['--model', HF_TINY, '--reference-model', TINY_MODEL]);
    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout) as { pass: boolean; cosine: { image: number; text: number } };
    expect(report.pass).toBe(true);
    expect(report.cosine.image).toBeGreaterThanOrEqual(0.99999);
    expect(report.cosine.text).toBeGreaterThanOrEqual(0.99999);
  });
});
