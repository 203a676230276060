/**
 * The browser edition in a real Chromium (Debian's chromium-headless-shell, WebGPU on the CPU), driven by
 * puppeteer-core: the bundle and the demo page served from 127.0.0.1 with the tiny open_clip checkpoint,
 * checked against what open_clip computed (tokens, pixels, embeddings), loaded a second time from the
 * browser's storage with no weight requests, used through the page's own UI (one screenshot to
 * test/output/), and the bundle's size budget.
 */
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import puppeteer, { type Browser, type ElementHandle, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseProbe, type ProbeFile } from '../src/eval/probe.js';
import { preprocessImage } from '../src/image/index.js';
import { serveStatic, type StaticServer } from '../src/serve/static.js';
import { loadNpy, maxAbsDiff, TINY } from './helpers.js';

const ROOT = new URL('../', import.meta.url);
const path = (relative: string): string => fileURLToPath(new URL(relative, ROOT));
const CHROMIUM = [process.env.WHYLESION_CHROMIUM, '/usr/bin/chromium-headless-shell', '/usr/bin/chromium'].find(
  (p) => p && existsSync(p),
);
const BUNDLE_BUDGET_GZIP_BYTES = 600_000;
const EMBEDDING_ABS_TOLERANCE = 1e-5;
const PIXEL_ABS_TOLERANCE = 1e-6;

const cases = JSON.parse(readFileSync(new URL('cases.json', TINY), 'utf8')) as {
  images: string[];
  texts: string[];
  tokens: number[][];
  label_probs_first3_texts: number[][];
};

let server: StaticServer;
let browser: Browser | undefined;
let launchProblem = CHROMIUM
  ? ''
  : 'no Chromium found (install chromium-headless-shell: bash scripts/setup-webgpu.sh, or set WHYLESION_CHROMIUM)';

beforeAll(async () => {
  server = await serveStatic({
    '/': path('dist/web'),
    '/model/': path('test/fixtures/openclip-tiny/model'),
    '/fixtures/': path('test/fixtures/openclip-tiny'),
    '/image-fixtures/': path('test/fixtures/image/src'),
  });
  if (!CHROMIUM) return;
  try {
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: 'shell',
      // Root in a container needs --no-sandbox; Vulkan gives the GPU-less machine a WebGPU adapter.
      args: [
        '--no-sandbox',
        '--disable-dev-shm-usage',
        '--enable-unsafe-webgpu',
        '--enable-features=Vulkan',
        '--use-angle=vulkan',
      ],
    });
  } catch (error) {
    launchProblem = `Chromium did not start: ${(error as Error).message.split('\n')[0]}`;
  }
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

async function openPage(query = ''): Promise<Page> {
  const page = await browser!.newPage();
  page.on('pageerror', (error) => console.log(`page error: ${(error as Error).message}`));
  await page.goto(`${server.url}${query}`);
  return page;
}

async function pageHasWebGpu(page: Page): Promise<boolean> {
  return page.evaluate(async () => Boolean(await (navigator as unknown as { gpu?: GPU }).gpu?.requestAdapter()));
}

function expectRowsClose(what: string, rows: number[][], expected: { shape: number[]; data: Float32Array }): void {
  const dim = expected.shape[1]!;
  expect(rows.length, `${what} rows`).toBe(expected.shape[0]);
  const diffs = rows.map((row, i) => {
    const want = expected.data.subarray(i * dim, (i + 1) * dim);
    expect(row.length).toBe(dim);
    return maxAbsDiff(row, want);
  });
  console.log(`${what}s: max abs diff to open_clip ${Math.max(...diffs).toExponential(2)}`);
  diffs.forEach((diff, i) => {
    expect(diff, `${what} ${i}`).toBeLessThanOrEqual(EMBEDDING_ABS_TOLERANCE);
  });
}

describe('browser edition (Chromium)', () => {
  it('bundle stays within its size budget and holds no Node built-in', () => {
    const bundle = readFileSync(path('dist/web/whylesion.js'));
    const gzipped = gzipSync(bundle, { level: 9 }).length;
    console.log(
      `dist/web/whylesion.js: ${(bundle.length / 1000).toFixed(0)} kB minified, ${(gzipped / 1000).toFixed(0)} kB gzipped (budget ${BUNDLE_BUDGET_GZIP_BYTES / 1000} kB)`,
    );
    expect(gzipped).toBeLessThanOrEqual(BUNDLE_BUDGET_GZIP_BYTES);
    expect(bundle.toString('utf8')).not.toMatch(/from\s*"node:|import\("node:/);
  });

  it('decodes WebP (lossless, with alpha, lossy) through the bundled libwebp to the same pixels as on Node', async (ctx) => {
    if (!browser) ctx.skip(launchProblem);
    const page = await openPage();
    const names = ['lossless.webp', 'lossless_rgba.webp', 'lossy.webp'];
    const inPage = await page.evaluate(async (files: string[]) => {
      const { module } = (window as unknown as { whylesion: { module: typeof import('../src/web.js') } }).whylesion;
      const out: number[][] = [];
      for (const file of files) {
        const bytes = new Uint8Array(await (await fetch(`/image-fixtures/${file}`)).arrayBuffer());
        out.push(Array.from(await module.preprocessImage(bytes, { size: 64 }, file)));
      }
      return out;
    }, names);
    await page.close();
    for (const [i, name] of names.entries()) {
      const onNode = await preprocessImage(readFileSync(path(`test/fixtures/image/src/${name}`)), { size: 64 }, name);
      expect(maxAbsDiff(inPage[i]!, onNode), name).toBe(0);
    }
  });

  it('matches open_clip: tokens, pixels and embeddings; loads offline the second time', async (ctx) => {
    if (!browser) ctx.skip(launchProblem);
    const started = performance.now();
    const page = await openPage();
    if (!(await pageHasWebGpu(page))) ctx.skip('this Chromium offers no WebGPU adapter');
    const result = await page.evaluate(
      async (texts: string[], images: string[]) => {
        const { module } = (window as unknown as { whylesion: { module: typeof import('../src/web.js') } }).whylesion;
        const model = await module.loadModel('/model/');
        const firstText = await model.encodeText(texts.slice(0, 1), { normalize: true });
        const firstEmbeddingMs = performance.now();
        const tokens = Array.from(await model.tokenize(texts));
        // Pixels are compared here (150k floats each) against open_clip's .npy, parsed by its v1.0 header.
        const pixelDiffs: number[] = [];
        for (const image of images) {
          const got = await model.preprocess(`/fixtures/images/${image}`);
          const npy = new Uint8Array(
            await (await fetch(`/fixtures/expected/pixels224_${image.replace(/\.[^.]+$/, '')}.npy`)).arrayBuffer(),
          );
          const headerLength = npy[8]! | (npy[9]! << 8);
          const want = new Float32Array(npy.slice(10 + headerLength).buffer);
          let diff = got.length === want.length ? 0 : Infinity;
          for (let i = 0; i < want.length; i++) diff = Math.max(diff, Math.abs(got[i]! - want[i]!));
          pixelDiffs.push(diff);
        }
        const imageRows = await model.encodeImage(
          images.map((image) => `/fixtures/images/${image}`),
          { normalize: true },
        );
        // Images the page already decoded: an ImageBitmap and an <img> of the opaque RGB PNG.
        const png = `/fixtures/images/${images[0]}`;
        const bitmap = await createImageBitmap(await (await fetch(png)).blob(), { colorSpaceConversion: 'none' });
        const element = new Image();
        element.src = png;
        await element.decode();
        const decodedRows = await model.encodeImage([bitmap, element], { normalize: true });
        const textRows = await model.encodeText(texts, { normalize: true });
        const rawTextRows = await model.encodeText(texts);
        // Which kernels the image tower ran (the adapter picks the family).
        const kernels = (await model.model.profilePixels(await model.preprocess(png), 1)).map((k) => k.kernel);
        const subgroups = (await navigator.gpu.requestAdapter())?.features.has('subgroups') ?? false;
        model.dispose();
        const rows = (list: Float32Array[]) => list.map((row) => Array.from(row));
        return {
          firstEmbeddingMs,
          adapter: model.adapter,
          kernels: [...new Set(kernels)].sort(),
          subgroups,
          tokens,
          pixelDiffs,
          first: rows(firstText),
          image: rows(imageRows),
          decoded: rows(decodedRows),
          text: rows(textRows),
          rawText: rows(rawTextRows),
        };
      },
      cases.texts,
      cases.images,
    );
    // performance.now() in the page counts from its navigation start.
    console.log(
      `page load to first tiny-model embedding: ${(result.firstEmbeddingMs / 1000).toFixed(2)} s ` +
        `(${((performance.now() - started) / 1000).toFixed(1)} s for the whole check); adapter ${JSON.stringify(result.adapter)}`,
    );

    // On SwiftShader (what a GPU-less Chromium offers) the spelled-out 4-lane kernels computed these embeddings.
    console.log(`image tower kernels: ${result.kernels.join(', ')}`);
    if (/swiftshader/i.test(result.adapter.architecture) && result.subgroups)
      expect(result.kernels).toEqual(expect.arrayContaining(['attention_tile_unrolled', 'matmul_subgroup_unrolled']));
    expect(result.tokens).toEqual(cases.tokens.flat());
    console.log(
      `pixels: max abs diff to open_clip ${Math.max(...result.pixelDiffs).toExponential(2)} (${cases.images.join(', ')})`,
    );
    result.pixelDiffs.forEach((diff, i) => {
      expect(diff, `pixels of ${cases.images[i]}`).toBeLessThanOrEqual(PIXEL_ABS_TOLERANCE);
    });
    const expectedImages = loadNpy(new URL('expected/image_embeddings.npy', TINY));
    const expectedTexts = loadNpy(new URL('expected/text_embeddings.npy', TINY));
    expectRowsClose('image embedding', result.image, expectedImages);
    expectRowsClose('text embedding', result.text, expectedTexts);
    expectRowsClose('raw text embedding', result.rawText, loadNpy(new URL('expected/text_embeddings_raw.npy', TINY)));
    expect(maxAbsDiff(result.first[0]!, result.text[0]!)).toBe(0);
    // The browser's own decode of an opaque 8-bit PNG gives the same pixels, so the same embedding.
    for (const row of result.decoded)
      expect(maxAbsDiff(row, result.image[0]!)).toBeLessThanOrEqual(EMBEDDING_ABS_TOLERANCE);

    // Second load: the weights come from the browser's storage, not the server.
    const weightRequests = () => server.log.filter((line) => line.includes('open_clip_model.safetensors')).length;
    const before = weightRequests();
    expect(before).toBeGreaterThan(2);
    const again = await page.evaluate(async () => {
      const { module } = (window as unknown as { whylesion: { module: typeof import('../src/web.js') } }).whylesion;
      const model = await module.loadModel('/model/');
      const rows = await model.encodeText(['dark brown'], { normalize: true });
      model.dispose();
      return Array.from(rows[0]!);
    });
    expect(weightRequests()).toBe(before);
    expect(maxAbsDiff(again, result.text[0]!)).toBe(0);
    await page.close();
  });

  it('the page classifies a dropped photo with the default labels, as open_clip does', async (ctx) => {
    if (!browser) ctx.skip(launchProblem);
    const page = await openPage('?model=/model/');
    if (!(await pageHasWebGpu(page))) ctx.skip('this Chromium offers no WebGPU adapter');
    await page.waitForSelector('#status[data-state="ready"], #status[data-state="error"]', { timeout: 60_000 });
    expect(await page.$eval('#status', (el) => el.textContent)).toMatch(/^Model ready/);
    expect(await page.$eval('#adapter', (el) => el.textContent)).toMatch(/^WebGPU adapter: /);
    expect(await page.$eval('#privacy', (el) => el.textContent)).toMatch(/never leave this device/);

    const image = cases.images.indexOf('lesion_q90.jpg');
    const input = (await page.$('input#images')) as ElementHandle<HTMLInputElement>;
    await input.uploadFile(path('test/fixtures/openclip-tiny/images/lesion_q90.jpg'));
    await page.waitForSelector('.result[data-state="done"], .result[data-state="error"]', { timeout: 60_000 });
    const rows = await page.$$eval('.result .row', (els) =>
      els.map((el) => [(el as HTMLElement).dataset.label!, Number((el as HTMLElement).dataset.probability)] as const),
    );
    const shown = Object.fromEntries(rows);
    cases.texts.slice(0, 3).forEach((label, k) => {
      expect(Math.abs(shown[label]! - cases.label_probs_first3_texts[image]![k]!), label).toBeLessThanOrEqual(1e-5);
    });
    expect(await page.$$eval('.result ol.concepts li', (els) => els.length)).toBe(5);

    // A concept probe picked on the page: its prediction and contributions, as the library computes them in Node
    // from open_clip's raw embedding of the same image.
    const texts = loadNpy(new URL('expected/text_embeddings.npy', TINY));
    const probeFile: ProbeFile = {
      format: 'whylesion-probe',
      version: 1,
      mode: 'concepts',
      classes: ['benign', 'melanoma'],
      normalize: true,
      concepts: cases.texts.slice(0, 2),
      conceptEmbeddings: [0, 1].map((i) => Array.from(texts.data.subarray(i * 32, (i + 1) * 32))),
      weight: [
        [1, -1],
        [-1, 2],
      ],
      bias: [0, 0.1],
      training: {},
    };
    const probePath = join(mkdtempSync(join(tmpdir(), 'whylesion-probe-')), 'tiny-probe.json');
    writeFileSync(probePath, JSON.stringify(probeFile));
    await ((await page.$('input#probe-file')) as ElementHandle<HTMLInputElement>).uploadFile(probePath);
    await page.waitForSelector('.result .probe', { timeout: 60_000 });
    const shownProbe = await page.$eval('.result .probe', (el) => ({
      prediction: (el as HTMLElement).dataset.prediction,
      contributions: [...el.querySelectorAll('li')].map((li) => Number((li as HTMLElement).dataset.contribution)),
    }));
    const raw = loadNpy(new URL('expected/image_embeddings_raw.npy', TINY)).data.subarray(image * 32, (image + 1) * 32);
    const probe = parseProbe(JSON.stringify(probeFile), 'tiny-probe.json');
    const k = probe.predict([raw]).predictions[0]!;
    expect(shownProbe.prediction).toBe(probe.classes[k]);
    const want = probe.contributions(raw, k).map((c) => c.contribution);
    expect(shownProbe.contributions.length).toBe(want.length);
    shownProbe.contributions.forEach((c, i) => {
      expect(Math.abs(c - want[i]!)).toBeLessThanOrEqual(1e-5);
    });

    mkdirSync(path('test/output'), { recursive: true });
    await page.setViewport({ width: 1000, height: 900 });
    await page.screenshot({ path: path('test/output/browser-page.png') as `${string}.png`, fullPage: true });
    await page.close();
  });

  it('loads from a static server that ignores Range: one streamed body, the same numbers, kept for offline', async (ctx) => {
    if (!browser) ctx.skip(launchProblem);
    // Like `python3 -m http.server`: every GET is answered 200 with the whole file, whatever its Range header.
    const log: { path: string; range?: string; method: string }[] = [];
    const roots: [string, string][] = [
      ['/model/', path('test/fixtures/openclip-tiny/model/')],
      ['/', path('dist/web/')],
    ];
    const plain = createServer((request, response) => {
      const url = new URL(request.url ?? '/', 'http://127.0.0.1');
      log.push({ path: url.pathname, range: request.headers.range, method: request.method ?? '' });
      const [prefix, dir] = roots.find(([p]) => url.pathname.startsWith(p))!;
      const file = join(dir, decodeURIComponent(url.pathname.slice(prefix.length)) || 'index.html');
      if (!file.startsWith(dir) || !existsSync(file) || !statSync(file).isFile())
        return void response.writeHead(404).end();
      const type = file.endsWith('.html')
        ? 'text/html'
        : file.endsWith('.js')
          ? 'text/javascript'
          : file.endsWith('.css')
            ? 'text/css'
            : 'application/octet-stream';
      response.writeHead(200, { 'Content-Length': statSync(file).size, 'Content-Type': type });
      if (request.method === 'HEAD') return void response.end();
      createReadStream(file).pipe(response);
    });
    await new Promise<void>((done) => plain.listen(0, '127.0.0.1', done));
    const origin = `http://127.0.0.1:${(plain.address() as { port: number }).port}`;
    const page = await browser!.newPage();
    try {
      await page.goto(`${origin}/`);
      if (!(await pageHasWebGpu(page))) ctx.skip('this Chromium offers no WebGPU adapter');
      const load = () =>
        page.evaluate(async (texts: string[]) => {
          const { module } = (window as unknown as { whylesion: { module: typeof import('../src/web.js') } }).whylesion;
          const bytes: number[] = [];
          const model = await module.loadModel('/model/', {
            onProgress: (p) => {
              if (p.stage === 'download') bytes.push(p.loaded);
            },
          });
          const rows = await model.encodeText(texts, { normalize: true });
          model.dispose();
          return { bytes, rows: rows.map((r) => Array.from(r)) };
        }, cases.texts);
      const weights = () => log.filter((r) => r.path.endsWith('open_clip_model.safetensors') && r.method === 'GET');
      const first = await load();
      expectRowsClose(
        'text embedding (whole-file server)',
        first.rows,
        loadNpy(new URL('expected/text_embeddings.npy', TINY)),
      );
      expect(weights()).toHaveLength(1); // one body, streamed once from its start
      expect(weights()[0]!.range).toMatch(/^bytes=0-/);
      const size = statSync(path('test/fixtures/openclip-tiny/model/open_clip_model.safetensors')).size;
      expect(first.bytes.length).toBeGreaterThan(3); // progress as the body streams
      expect(first.bytes.every((v, i) => i === 0 || v > first.bytes[i - 1]!)).toBe(true);
      expect(first.bytes.at(-1)).toBe(size);
      // The browser's storage kept the streamed copy: the second load asks the server for no weights.
      const second = await load();
      expect(weights()).toHaveLength(1);
      expect(second.rows).toEqual(first.rows);
    } finally {
      await page.close();
      plain.close();
    }
  });

  it('says so plainly where the browser has no WebGPU', async (ctx) => {
    if (!browser) ctx.skip(launchProblem);
    const page = await browser!.newPage();
    await page.evaluateOnNewDocument(() => {
      Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined });
    });
    await page.goto(server.url);
    await page.waitForFunction(() => !document.getElementById('no-webgpu')!.hidden);
    expect(await page.$eval('#no-webgpu', (el) => el.textContent)).toMatch(/no WebGPU/);
    expect(await page.$eval('#load', (el) => (el as HTMLButtonElement).disabled)).toBe(true);
    // Only the message: a photo picked anyway leaves no card waiting for a model that cannot come.
    expect(await page.$$eval('section', (els) => els.map((el) => (el as HTMLElement).offsetParent === null))).toEqual([
      true,
      true,
      true,
    ]);
    await ((await page.$('input#images')) as ElementHandle<HTMLInputElement>).uploadFile(
      path('test/fixtures/openclip-tiny/images/lesion_q90.jpg'),
    );
    // biome-ignore lint/performance/useDomNodeTextContent: the text a user sees, not hidden nodes' text
    expect(await page.evaluate(() => document.body.innerText)).not.toMatch(/Waiting for the model/);
    await page.close();
  });
});
