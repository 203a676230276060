import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Jimp } from 'jimp';
import { describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { readNpy } from '../src/io/npy.js';
import {
  applyExifOrientation,
  centerCrop,
  centerCropOffsets,
  decodeImage,
  MAX_IMAGE_PIXELS,
  normalizeToChw,
  preprocessImage,
  preprocessJimp,
  readImageHeader,
  resizedSize,
  resizeToRgb,
} from '../src/image/index.js';
import { preprocessImageFile } from '../src/image/load.js';

const REFERENCE = fileURLToPath(new URL('fixtures/openclip-tiny/', import.meta.url));
const FIXTURES = fileURLToPath(new URL('./fixtures/image/', import.meta.url));

interface FixtureCase {
  case: string;
  source: string;
  size: number;
  pillowMode: string;
  exifRotate: boolean;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

/** The uint8 RGB image open_clip's transform hands to ToTensor, from the Pillow-made expected PNG. */
async function expectedRgb(name: string): Promise<Uint8Array> {
  const { data, width, height } = (await Jimp.read(`${FIXTURES}expected/${name}.png`)).bitmap;
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) rgb.set(data.subarray(i * 4, i * 4 + 3), i * 3);
  return rgb;
}

/** Our pipeline up to the uint8 RGB crop (Resize in Pillow's mode, convert("RGB"), CenterCrop). */
async function oursRgb(c: FixtureCase): Promise<Uint8Array> {
  const bytes = await readFile(`${FIXTURES}src/${c.source}`);
  let image = await decodeImage(bytes, c.source);
  if (c.exifRotate) {
    const channels = image.data.length / (image.width * image.height);
    const turned = applyExifOrientation(
      image.data,
      image.width,
      image.height,
      channels,
      readImageHeader(bytes, c.source).exifOrientation,
    );
    image = { ...image, ...turned } as typeof image;
  }
  const target = resizedSize(image.width, image.height, c.size);
  return centerCrop(resizeToRgb(image, target.width, target.height), target.width, target.height, 3, c.size, c.size);
}

describe('open_clip reference pixels (open_clip 2.24 eval transform at 224)', () => {
  for (const image of ['lesion_rgb.png', 'lesion_q90.jpg', 'lesion_gray.png', 'lesion_portrait.png']) {
    it(`${image} matches within 1e-6`, async () => {
      const expected = readNpy(await readFile(`${REFERENCE}expected/pixels224_${image.replace(/\.\w+$/, '')}.npy`));
      expect(expected.shape).toEqual([3, 224, 224]);
      const ours = await preprocessImageFile(`${REFERENCE}images/${image}`);
      expect(maxAbsDiff(ours, expected.data as Float32Array)).toBeLessThanOrEqual(1e-6);
    });
  }
});

describe('Pillow-made fixtures (make_fixtures.py): uint8 RGB after resize and crop', async () => {
  const cases = JSON.parse(await readFile(`${FIXTURES}cases.json`, 'utf8')) as FixtureCase[];
  for (const c of cases.filter((c) => c.case !== 'cmyk_jpg')) {
    it(`${c.case} (Pillow mode ${c.pillowMode}) is bit-identical`, async () => {
      const ours = await oursRgb(c);
      const expected = await expectedRgb(c.case);
      expect(maxAbsDiff(ours, expected)).toBe(0);
    });
  }

  it('cmyk_jpg is close: jimp decodes CMYK in JavaScript and converts before resizing, Pillow after', async () => {
    const c = cases.find((c) => c.case === 'cmyk_jpg')!;
    const ours = await oursRgb(c);
    const expected = await expectedRgb(c.case);
    let sum = 0;
    for (let i = 0; i < ours.length; i++) sum += Math.abs(ours[i]! - expected[i]!);
    // Measured: mean 0.54 levels, max 3.
    expect(sum / ours.length).toBeLessThan(1);
    expect(maxAbsDiff(ours, expected)).toBeLessThanOrEqual(4);
  });
});

describe('torchvision geometry', () => {
  it('Resize(int) sets the shorter side and truncates the longer', () => {
    expect(resizedSize(1000, 60, 96)).toEqual({ width: 1600, height: 96 });
    expect(resizedSize(101, 77, 64)).toEqual({ width: 83, height: 64 }); // 83.94 -> 83
    expect(resizedSize(77, 113, 64)).toEqual({ width: 64, height: 93 }); // 93.92 -> 93
    expect(resizedSize(300, 300, 224)).toEqual({ width: 224, height: 224 });
  });

  it('CenterCrop offsets use Python round (ties to even)', () => {
    expect(centerCropOffsets(83, 64, 64, 64)).toEqual({ left: 10, top: 0 }); // round(9.5) = 10
    expect(centerCropOffsets(64, 93, 64, 64)).toEqual({ left: 0, top: 14 }); // round(14.5) = 14
    expect(centerCropOffsets(227, 224, 224, 224).left).toBe(2); // round(1.5) = 2
    expect(centerCropOffsets(229, 224, 224, 224).left).toBe(2); // round(2.5) = 2
    const src = Uint8Array.from({ length: 5 * 2 }, (_, i) => i);
    expect(Array.from(centerCrop(src, 5, 2, 1, 2, 2))).toEqual([2, 3, 7, 8]); // left = round(1.5) = 2
  });

  it('ToTensor + Normalize equal float32 torch arithmetic', () => {
    const out = normalizeToChw(
      Uint8Array.from([0, 128, 255]),
      1,
      1,
      [0.48145466, 0.4578275, 0.40821073],
      [0.26862954, 0.26130258, 0.27577711],
    );
    // torch.tensor([0,128,255]).float().div(255).sub(mean).div(std) in float32.
    expect(out[0]).toBe(Math.fround(Math.fround(0 - Math.fround(0.48145466)) / Math.fround(0.26862954)));
    expect(out[2]).toBeCloseTo((1 - 0.40821073) / 0.27577711, 6);
    expect(out[1]).toBeCloseTo((128 / 255 - 0.4578275) / 0.26130258, 6);
  });
});

describe('inputs', () => {
  it('a jimp image is preprocessed as RGBA, the same as its PNG bytes', async () => {
    const path = `${FIXTURES}src/rgba.png`;
    const fromJimp = preprocessJimp(await Jimp.read(path), { size: 96 });
    const fromBytes = await preprocessImage(await readFile(path), { size: 96 });
    expect(maxAbsDiff(fromJimp, fromBytes)).toBe(0);
  });

  it('lays out ToTensor values in CHW order (mean 0, std 1 gives v / 255)', async () => {
    const c: FixtureCase = { case: 'tiny_png', source: 'tiny.png', size: 224, pillowMode: 'RGB', exifRotate: false };
    const chw = await preprocessImage(await readFile(`${FIXTURES}src/${c.source}`), {
      size: 224,
      mean: [0, 0, 0],
      std: [1, 1, 1],
    });
    const rgb = await expectedRgb(c.case);
    const plane = 224 * 224;
    const fromHwc = Float32Array.from({ length: 3 * plane }, (_, i) =>
      Math.fround(rgb[(i % plane) * 3 + Math.floor(i / plane)]! / 255),
    );
    expect(maxAbsDiff(chw, fromHwc)).toBe(0);
  });
});

describe('user errors', () => {
  const expectUserError = async (promise: Promise<unknown>, pattern: RegExp) => {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toMatch(pattern);
  };

  it('empty, text, truncated and foreign files', async () => {
    await expectUserError(preprocessImage(new Uint8Array(0), {}, 'empty.png'), /empty\.png is empty/);
    await expectUserError(
      preprocessImage(new TextEncoder().encode('hello, not a picture'), {}, 'notes.png'),
      /notes\.png is not a PNG, JPEG/,
    );
    const jpeg = await readFile(`${FIXTURES}src/s444.jpg`);
    await expectUserError(preprocessImage(jpeg.subarray(0, 1500), {}, 'cut.jpg'), /cut\.jpg is a truncated JPEG/);
    await expectUserError(preprocessImage(jpeg.subarray(0, 100), {}, 'head.jpg'), /head\.jpg is truncated or damaged/);
    const png = await readFile(`${FIXTURES}src/gray.png`);
    await expectUserError(
      preprocessImage(png.subarray(0, 2000), {}, 'cut.png'),
      /cut\.png could not be decoded as PNG/,
    );
    await expectUserError(preprocessImageFile(`${FIXTURES}missing.png`), /missing\.png does not exist/);
  });

  it('a WebP whose frame header is damaged is a user error naming it', async () => {
    const webp = new Uint8Array([
      ...new TextEncoder().encode('RIFF'),
      26,
      0,
      0,
      0,
      ...new TextEncoder().encode('WEBPVP8 '),
      ...new Array(18).fill(0),
    ]);
    await expectUserError(
      preprocessImage(webp, {}, 'photo.webp'),
      /^photo\.webp has a damaged WebP \(VP8\) header; re-export it\.$/,
    );
  });

  it('a 1×1 image upscales to a constant 224×224 image of its colour', async () => {
    const png = new Uint8Array(await new Jimp({ width: 1, height: 1, color: 0xc86432ff }).getBuffer('image/png'));
    const pixels = await preprocessImage(png, {}, 'dot.png');
    const mean = [0.48145466, 0.4578275, 0.40821073],
      std = [0.26862954, 0.26130258, 0.27577711];
    [200, 100, 50].forEach((v, c) => {
      const want = Math.fround((Math.fround(v / 255) - mean[c]!) / std[c]!);
      const plane = pixels.subarray(c * 224 * 224, (c + 1) * 224 * 224);
      expect(Math.max(...plane.map((p) => Math.abs(p - want)))).toBeLessThanOrEqual(1e-6);
    });
  });

  it("refuses images above Pillow's MAX_IMAGE_PIXELS from the header alone", async () => {
    const png = new Uint8Array(await readFile(`${FIXTURES}src/gray.png`));
    const view = new DataView(png.buffer);
    view.setUint32(16, 10_000);
    view.setUint32(20, 9_000); // 90,000,000 > 89,478,485; the now-wrong CRC is never reached
    expect(10_000 * 9_000).toBeGreaterThan(MAX_IMAGE_PIXELS);
    await expectUserError(
      preprocessImage(png, {}, 'huge.png'),
      /^huge\.png is 10000x9000 = 90000000 pixels, above the limit of 89478485 \(a decompression-bomb guard, Pillow's MAX_IMAGE_PIXELS\); downscale it first, or raise the limit with --max-image-pixels\.$/,
    );
  });

  it('rejects a bad size', async () => {
    await expectUserError(preprocessImage(new Uint8Array(0), { size: 0 }), /size 0 is not a positive integer/);
  });
});
