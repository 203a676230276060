// Numbers that are not numbers never reach a result: NaN/Inf weights are refused at load (naming the tensor),
// a forward that yields NaN/Inf is an error naming the input, not a row.
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/api/model.js';
import { UserError } from '../src/errors.js';
import { parseProbe } from '../src/eval/probe.js';
import { firstNonFiniteF16, firstNonFiniteF32 } from '../src/model/tensor-source.js';
import { Staging } from '../src/model/staging.js';
import { rng } from './helpers.js';
import { MODEL, pixelBatch, VOCAB } from './reliability-shared.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A copy of the tiny checkpoint with some of one tensor's f32 elements overwritten. */
function damagedCopy(tensor: string, values: Record<number, number>): string {
  const dir = mkdtempSync(join(tmpdir(), 'whylesion-nan-'));
  dirs.push(dir);
  copyFileSync(join(MODEL, 'open_clip_config.json'), join(dir, 'open_clip_config.json'));
  const bytes = readFileSync(join(MODEL, 'open_clip_model.safetensors'));
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<
    string,
    { dtype: string; data_offsets: [number, number] }
  >;
  const entry = header[tensor]!;
  expect(entry.dtype).toBe('F32');
  for (const [index, value] of Object.entries(values))
    bytes.writeFloatLE(value, 8 + headerLength + entry.data_offsets[0] + 4 * Number(index));
  writeFileSync(join(dir, 'open_clip_model.safetensors'), bytes);
  return dir;
}

async function refusal(work: () => Promise<unknown>): Promise<string> {
  const error = await work().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UserError);
  return (error as Error).message;
}

describe('non-finite weights are refused at load', () => {
  it('a NaN in visual.conv1.weight names the file, the tensor and the element, in f32 and f16', async () => {
    const dir = damagedCopy('visual.conv1.weight', { 1234: NaN });
    for (const dtype of ['f32', 'f16'] as const) {
      const message = await refusal(() => loadModel(dir, { vocabPath: VOCAB, dtype }));
      expect(message).toMatch(
        /open_clip_model\.safetensors: tensor visual\.conv1\.weight holds NaN at element 1234; the checkpoint is damaged, re-download it\.$/,
      );
    }
  });

  it('an Inf in a layer norm and in the last element of a projection are refused', async () => {
    const ln = await refusal(() => loadModel(damagedCopy('ln_final.weight', { 0: -Infinity }), { vocabPath: VOCAB }));
    expect(ln).toMatch(/tensor ln_final\.weight holds Inf at element 0;/);
    const proj = await refusal(() =>
      loadModel(damagedCopy('visual.proj', { [64 * 32 - 1]: Infinity }), { vocabPath: VOCAB }),
    );
    expect(proj).toMatch(/tensor visual\.proj holds Inf at element 2047;/);
  });

  it('a NaN logit_scale, and one whose exp() overflows, are refused (no NaN% later)', async () => {
    const nan = await refusal(() => loadModel(damagedCopy('logit_scale', { 0: NaN }), { vocabPath: VOCAB }));
    expect(nan).toMatch(/tensor logit_scale holds NaN at element 0; the checkpoint is damaged/);
    const huge = await refusal(() => loadModel(damagedCopy('logit_scale', { 0: 1000 }), { vocabPath: VOCAB }));
    expect(huge).toMatch(
      /logit_scale is 1000, whose exp\(\) \(the similarity temperature\) is not a finite number; the checkpoint is damaged, re-download it\.$/,
    );
  });
});

describe('a forward that yields NaN/Inf is an error naming the input', () => {
  it('NaN pixels: the image is named, no row is returned', async () => {
    const model = await loadModel(MODEL, { vocabPath: VOCAB });
    try {
      const pixels = pixelBatch([0, 1]);
      pixels[3 * 224 * 224 + 5] = NaN; // in the second image
      const message = await refusal(() => model.encodePixels(pixels, 2));
      expect(message).toBe(
        "The embedding of image 2 of 2 holds NaN or Inf: the model's weights or this input produce non-finite values; check the input, or re-download the model.",
      );
      // The model still works afterwards.
      expect((await model.encodePixels(pixelBatch([0]), 1))[0]!.every(Number.isFinite)).toBe(true);
    } finally {
      model.dispose();
    }
  });

  it('finite weights that overflow in the forward: the prompt and the image file are named', async () => {
    // 3e38 is a finite f32, so the load check passes it; the projection's sums overflow to ±Inf.
    const huge = Object.fromEntries(Array.from({ length: 64 * 32 }, (_, i) => [i, 3e38]));
    const textModel = await loadModel(damagedCopy('text_projection', huge), { vocabPath: VOCAB });
    try {
      const message = await refusal(() => textModel.encodeText(['bleeding', 'dark brown']));
      expect(message).toMatch(
        /^The embedding of prompt 1 of 2 \("bleeding"\) holds NaN or Inf: the model's weights or this input produce non-finite values;/,
      );
    } finally {
      textModel.dispose();
    }
    const imageModel = await loadModel(damagedCopy('visual.proj', huge), { vocabPath: VOCAB });
    try {
      const image = join(MODEL, '..', 'images', 'lesion_gray.png');
      const message = await refusal(() => imageModel.encodeImage(image));
      expect(message).toContain(`The embedding of the image ${image} holds NaN or Inf`);
    } finally {
      imageModel.dispose();
    }
  });
});

describe('f16 activations past their range', () => {
  it('an MLP value beyond ±65504 under f16 activations is refused with what to do; f32 activations run it', async () => {
    // A c_fc bias of 1e5 (finite f32; biases stay f32 with f16 weights) makes one hidden value of the first
    // text block ~1e5: Inf as a half, finite as an f32. (The text tower: its small-M pipelines compile fast.)
    const dir = damagedCopy('transformer.resblocks.0.mlp.c_fc.bias', { 0: 1e5 });
    const halves = await loadModel(dir, { vocabPath: VOCAB, dtype: 'f16' });
    try {
      expect(halves.activations.text).toBe('f16');
      const message = await refusal(() => halves.encodeText(['bleeding']));
      expect(message).toBe(
        "The embedding of prompt 1 of 1 (\"bleeding\") holds NaN or Inf: the model's weights or this input produce non-finite values, or a value inside a block passed f16's range (±65504); load the model with activations 'f32' (--activations f32), check the input, or re-download the model.",
      );
    } finally {
      halves.dispose();
    }
    const f32Activations = await loadModel(dir, { vocabPath: VOCAB, dtype: 'f16', activations: 'f32' });
    try {
      const [row] = await f32Activations.encodeText(['bleeding']);
      expect(row!.every(Number.isFinite)).toBe(true);
    } finally {
      f32Activations.dispose();
    }
  });
});

describe('the NaN/Inf scan', () => {
  it('WebAssembly and JavaScript scans find the first non-finite element at every position and length', () => {
    const random = rng(22);
    const wasm = new Staging(true);
    const plain = new Staging(false);
    for (let trial = 0; trial < 300; trial++) {
      const length = Math.floor(random.uniform() * 200);
      const offset = Math.floor(random.uniform() * 8);
      const values = Array.from({ length }, () => (random.uniform() - 0.5) * 1e3);
      const hits = Math.floor(random.uniform() * 3);
      const specials = [NaN, Infinity, -Infinity, 3.4e38];
      for (let h = 0; h < hits && length > 0; h++)
        values[Math.floor(random.uniform() * length)] = specials[Math.floor(random.uniform() * 4)]!;
      const expected = values.findIndex((v) => !Number.isFinite(v));
      for (const staging of [wasm, plain]) {
        const f32 = staging.f32(length + offset).subarray(offset);
        f32.set(values);
        expect(staging.firstNonFiniteF32(f32)).toBe(expected);
        expect(firstNonFiniteF32(f32)).toBe(expected);
        // f16 bits: 0x7c00 is Inf, 0x7e00 NaN, 0x7bff the largest finite.
        const f16 = staging.f16(length + offset).subarray(offset);
        f16.set(values.map((v) => (Number.isNaN(v) ? 0x7e00 : !Number.isFinite(v) ? 0xfc00 : 0x7bff)));
        expect(staging.firstNonFiniteF16(f16)).toBe(expected);
        expect(firstNonFiniteF16(f16)).toBe(expected);
      }
    }
  });
});

describe('probes with numbers that are not numbers, or the wrong shape, are refused when read', () => {
  const good = {
    format: 'whylesion-probe',
    version: 1,
    mode: 'linear',
    classes: ['nevus', 'melanoma'],
    normalize: false,
    weight: [
      [1, 0, 0],
      [0, 1, 0],
    ],
    bias: [0, 0.5],
    model: { future: 'identity field' },
    training: {},
    extra: 'kept',
  };
  const variant = (change: (p: Record<string, unknown>) => void): string => {
    const copy = structuredClone(good) as Record<string, unknown>;
    change(copy);
    return JSON.stringify(copy);
  };

  it('a well-formed probe with unknown extra fields predicts as its weights say', () => {
    const probe = parseProbe(JSON.stringify(good), 'good.json');
    const { probabilities, labels } = probe.predict([Float32Array.of(0, 2, 0)]);
    expect(labels).toEqual(['melanoma']);
    // softmax([0, 2.5])
    expect(probabilities[0]![1]).toBeCloseTo(1 / (1 + Math.exp(-2.5)), 12);
  });

  const cases: [string, string, RegExp][] = [
    [
      '"NaN" string',
      variant((p) => {
        (p.weight as unknown[][])[1]![2] = 'NaN';
      }),
      /has weight\[1\]\[2\] "NaN", not a finite number/,
    ],
    [
      '1e999 (Infinity)',
      JSON.stringify(good).replace('"bias":[0,0.5]', '"bias":[0,1e999]'),
      /has "bias"\[1\] Infinity, not a finite number/,
    ],
    [
      'null weight',
      variant((p) => {
        (p.weight as unknown[][])[0]![0] = null;
      }),
      /has weight\[0\]\[0\] null, not a finite number/,
    ],
    [
      'ragged rows',
      variant((p) => {
        (p.weight as unknown[][])[1]!.push(3);
      }),
      /has weight\[1\] 4 values where 3 are needed/,
    ],
    [
      'missing bias',
      variant((p) => {
        delete p.bias;
      }),
      /has "bias" missing, not a list of numbers/,
    ],
    [
      'short bias',
      variant((p) => {
        p.bias = [0];
      }),
      /has "bias" 1 values where 2 are needed/,
    ],
    [
      'a class without weights',
      variant((p) => {
        (p.classes as string[]).push('bcc');
      }),
      /has "weight" 2 rows where 3 are needed/,
    ],
    [
      'empty weight rows',
      variant((p) => {
        p.weight = [[], []];
      }),
      /has weight\[0\] a list, not a non-empty list of numbers/,
    ],
    [
      'a class that is not a name',
      variant((p) => {
        (p.classes as unknown[])[0] = 7;
      }),
      /has classes\[0\] 7, not a name/,
    ],
    [
      'missing normalize',
      variant((p) => {
        delete p.normalize;
      }),
      /has "normalize" missing, not true or false/,
    ],
    [
      'concepts of the wrong count',
      variant((p) => {
        p.mode = 'concepts';
        p.concepts = ['a', 'b'];
        p.conceptEmbeddings = [[1], [1]];
      }),
      /has "concepts" 2 entries where the weight rows have 3/,
    ],
    [
      'a NaN concept embedding',
      variant((p) => {
        p.mode = 'concepts';
        p.concepts = ['a', 'b', 'c'];
        p.conceptEmbeddings = [
          [1, 0],
          [0, 1],
          [0, 'NaN'],
        ];
      }),
      /has conceptEmbeddings\[2\]\[1\] "NaN", not a finite number/,
    ],
    [
      'an unknown mode',
      variant((p) => {
        p.mode = 'svm';
      }),
      /has "mode" "svm", not one of linear, concepts, knobo/,
    ],
  ];
  for (const [what, text, message] of cases) {
    it(`refuses ${what}, naming the field and the file`, () => {
      let error: unknown;
      try {
        parseProbe(text, 'bad-probe.json');
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(UserError);
      expect((error as Error).message).toMatch(/^The probe bad-probe\.json has /);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).toMatch(/; train it again with whylesion probe train --out\.$/);
    });
  }

  it('a probe whose finite weights overflow the scores is refused at predict, not ranked NaN', () => {
    const probe = parseProbe(
      variant((p) => {
        p.weight = [
          [1e308, 1e308, 0],
          [0, 0, 1],
        ];
      }),
      'huge.json',
    );
    expect(() => probe.predict([Float32Array.of(1e3, 1e3, 0)])).toThrow(/The probe's scores overflow/);
  });
});
