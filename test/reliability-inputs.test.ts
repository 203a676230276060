import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WhyLesionModel } from '../src/api/model.js';
import { UserError } from '../src/errors.js';
import { maxAbsDiff } from './helpers.js';
import {
  bits,
  cases,
  collectGarbage,
  expectedImage,
  expectedText,
  expectMatches,
  loadTiny,
  pixelBatch,
} from './reliability-shared.js';

const SOT = 49406,
  EOT = 49407;
const EMPTY = cases.texts.indexOf(''); // open_clip's embedding of the empty prompt is one of the reference rows
const DARK_BROWN = cases.texts.indexOf('dark brown');

/** The reference tokenization of "dark brown" (open_clip's): its two word ids. */
const [DARK, BROWN] = cases.tokens[DARK_BROWN]!.slice(1, 3);
if (DARK === undefined || BROWN === undefined) throw new Error('cases.json lacks the tokens of "dark brown"');

let model: WhyLesionModel;
beforeAll(async () => {
  model = await loadTiny();
});
afterAll(() => model.dispose());

async function userError(work: () => unknown): Promise<Error> {
  const error = await Promise.resolve()
    .then(work)
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(error).toBeInstanceOf(UserError);
  return error as Error;
}

describe('inputs through WhyLesionModel', () => {
  it('empty and whitespace-only prompts embed as open_clip embeds ""', async () => {
    const rows = await model.encodeText(['', ' \n\t ', 'dark brown', '']);
    expectMatches(rows, [EMPTY, EMPTY, DARK_BROWN, EMPTY].map(expectedText));
    expect(bits([rows[1]!, rows[3]!])).toEqual(bits([rows[0]!, rows[0]!]));
    expectMatches(await model.encodeText(''), [expectedText(EMPTY)]);
  });

  it('a 1 MB prompt is cut to the context as open_clip cuts it, quickly', async () => {
    const big = 'dark brown '.repeat(100_000);
    expect(big.length).toBeGreaterThan(1_000_000);
    const started = performance.now();
    const [row] = await model.encodeText(big);
    if (row === undefined) throw new Error('missing row');
    expect(performance.now() - started).toBeLessThan(5000);
    // open_clip keeps the first 75 ids of the text between SOT and an EOT in the last slot.
    const ids = new Int32Array(77);
    ids[0] = SOT;
    for (let t = 1; t <= 75; t++) ids[t] = t % 2 === 1 ? DARK : BROWN;
    ids[76] = EOT;
    const [expected] = await model.encodeTokens(ids, 1);
    if (expected === undefined) throw new Error('missing expected');
    expect(bits([row])).toEqual(bits([expected]));
  });

  it('long prompts do not stay in memory through the prompt cache', async () => {
    collectGarbage();
    const heapBefore = process.memoryUsage().heapUsed;
    for (let i = 0; i < 10; i++) await model.encodeText(`${i} ${'irregular shape '.repeat(70_000)}`); // 1.1 MB each
    collectGarbage();
    const growth = process.memoryUsage().heapUsed - heapBefore;
    expect(growth).toBeLessThan(2 * 2 ** 20); // holding the texts would be 11 MB
  });

  it('lone UTF-16 surrogates are read as U+FFFD, not refused and not dropped', async () => {
    const [lone, replaced, clean] = await model.encodeText(['dark brown \ud83d', 'dark brown \ufffd', 'dark brown']);
    if (lone === undefined || replaced === undefined || clean === undefined)
      throw new Error('missing lone, replaced, clean');
    expect(bits([lone])).toEqual(bits([replaced]));
    expect(bits([lone])).not.toEqual(bits([clean]));
    const [high, low] = await model.encodeText(['\ud800 bleeding', '\udc00 bleeding']);
    if (high === undefined || low === undefined) throw new Error('missing high, low');
    expect(bits([high])).toEqual(bits([low]));
    expect(lone.every(Number.isFinite)).toBe(true);
  });

  it('non-string prompts are refused, naming which one', async () => {
    for (const bad of [42, null, undefined, {}]) {
      const error = await userError(() => model.encodeText(['bleeding', bad as unknown as string]));
      expect(error.message).toMatch(
        /^Text 2 of 2 is (a number|null|undefined|an object), not a string; pass prompts as strings\.$/,
      );
    }
  });

  it('empty lists give empty results; classify needs at least one label', async () => {
    expect(await model.encodeText([])).toEqual([]);
    expect(await model.encodeImage([])).toEqual([]);
    const images = await model.encodePixels(pixelBatch([0]), 1);
    const labels = await model.encodeText(cases.texts.slice(0, 3));
    expect(model.classify([], labels)).toEqual([]);
    const error = await userError(() => model.classify(images, []));
    expect(error.message).toMatch(/at least one label/);
    // And the model still classifies as open_clip does afterwards (×100 logit scale: 1e-5 in cosines is 1e-3 here).
    expectMatches(images, [expectedImage(0)]);
    const [probs] = model.classify(images, labels);
    if (probs === undefined) throw new Error('missing probs');
    expect(maxAbsDiff(probs, cases.label_probs_first3_texts[0]!)).toBeLessThanOrEqual(1e-3);
  });

  it('preprocessed pixels or token ids of the wrong size are refused, saying what size fits', async () => {
    const pixels = await userError(() => model.encodePixels(pixelBatch([0, 1]).subarray(1), 2));
    expect(pixels.message).toMatch(
      /^Pixels hold 301055 values; a batch of 2 images at 224×224 needs 301056 \(\[B, 3, 224, 224\]\)\.$/,
    );
    const tokens = await userError(() => model.encodeTokens(new Int32Array(76), 1));
    expect(tokens.message).toMatch(/^Token ids hold 76 values; 1 prompts need 77 \(context length 77\)\.$/);
  });

  it("classify refuses rows that are not this model's embeddings; a fractional batch is refused", async () => {
    const [image] = await model.encodeText(['dark brown']);
    if (image === undefined) throw new Error('missing image');
    await userError(() => model.classify([image], [new Float32Array(image.length)]));
    await userError(() => model.classify([image], [new Float32Array(image.length + 1).fill(1)]));
    await userError(() => model.encodePixels(new Float32Array(3 * 224 * 224 * 1.5), 1.5));
    await userError(() => model.encodeTokens(new Int32Array(77 * 3), 2.5 as number));
  });
});
