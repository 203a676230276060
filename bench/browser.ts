/**
 * The browser edition at full ViT-L/14 in Chromium (chromium-headless-shell, driven by puppeteer-core): the
 * bundle and a synthetic ViT-L/14 checkpoint (WhyLesionCLIP's exact layout, random weights) served from
 * 127.0.0.1; times the first load (HTTP Range reads into the GPU and into OPFS), the second load (from OPFS,
 * no weight requests), the text tower (3 prompts) and the image tower (1 image). Prints a table and writes
 * bench/results/browser-ViT-L-14-<dtype>.json.
 *
 *   npm run bench:browser [-- --dtype f32]
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';
import { serveStatic } from '../src/serve/static.js';
import { flag, machine, REPO, syntheticCheckpoint, writeResult } from './common.js';

const dtype = flag(process.argv, 'dtype', 'f32') as 'f32' | 'f16';
const chromium = [process.env.WHYLESION_CHROMIUM, '/usr/bin/chromium-headless-shell', '/usr/bin/chromium'].find(
  (p) => p && existsSync(p),
);
if (!chromium)
  throw new Error('no Chromium: install chromium-headless-shell (scripts/setup-webgpu.sh) or set WHYLESION_CHROMIUM');
const cpuFlags = (execFileSync('lscpu', { encoding: 'utf8' }).match(/^Flags:\s*(.*)$/m)?.[1] ?? '')
  .split(' ')
  .filter((f) => /^(avx|fma|sse4|f16c)/.test(f))
  .join(' ');

execFileSync(process.execPath, [join(REPO, 'scripts/build-web.mjs')], { stdio: 'inherit' });
const checkpoint = await syntheticCheckpoint('ViT-L-14', 0, 'f32');
const server = await serveStatic({
  '/': join(REPO, 'dist/web'),
  '/model/': checkpoint,
  '/examples/': join(REPO, 'examples'),
});
const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: 'shell',
  args: [
    '--no-sandbox',
    '--disable-dev-shm-usage',
    '--enable-unsafe-webgpu',
    '--enable-features=Vulkan',
    '--use-angle=vulkan',
  ],
  protocolTimeout: 1_800_000,
});
const loadBefore = loadavg();
try {
  const page = await browser.newPage();
  page.on('console', (message) => console.error(`  [page] ${message.text()}`));
  await page.goto(server.url);
  const weightRequests = () => server.log.filter((l) => l.includes('open_clip_model.safetensors')).length;
  const measured = await page.evaluate(async (dtype: string) => {
    const { module } = (window as unknown as { whylesion: { module: typeof import('../src/web.js') } }).whylesion;
    const seconds = (t0: number) => {
      const s = (performance.now() - t0) / 1000;
      console.log(`step done in ${s.toFixed(1)} s`);
      return s;
    };
    let t0 = performance.now();
    let model = await module.loadModel('/model/', { dtype: dtype as 'f32' | 'f16' });
    const firstLoad = seconds(t0);
    model.dispose();
    t0 = performance.now();
    model = await module.loadModel('/model/', { dtype: dtype as 'f32' | 'f16' });
    const secondLoad = seconds(t0);
    const texts = ['dark brown', 'bleeding', 'irregular shape'];
    t0 = performance.now();
    await model.encodeText(texts);
    const textCold = seconds(t0);
    t0 = performance.now();
    await model.encodeText(['a', 'b', 'c']);
    const textWarm = seconds(t0);
    t0 = performance.now();
    await model.encodeImage('/examples/lesion.png');
    const imageCold = seconds(t0);
    t0 = performance.now();
    await model.encodeImage('/examples/lesion.png');
    const imageWarm = seconds(t0);
    const adapter = model.adapter;
    model.dispose();
    const storage = await navigator.storage.estimate();
    return {
      firstLoad,
      secondLoad,
      textCold,
      textWarm,
      imageCold,
      imageWarm,
      adapter,
      storedBytes: storage.usage ?? 0,
    };
  }, dtype);
  const afterFirst = weightRequests();
  const rows = [
    ['first load (range requests → GPU + OPFS)', measured.firstLoad],
    ['second load (OPFS → GPU)', measured.secondLoad],
    ['text tower, 3 prompts, first', measured.textCold],
    ['text tower, 3 prompts, warm', measured.textWarm],
    ['image tower, 1 image, first', measured.imageCold],
    ['image tower, 1 image, warm', measured.imageWarm],
  ] as const;
  console.log(`\nViT-L/14 (${dtype} weights) in Chromium, ${machine(measured.adapter)}`);
  for (const [what, s] of rows) console.log(`  ${what.padEnd(44)} ${s.toFixed(2).padStart(8)} s`);
  console.log(
    `  weight requests: ${afterFirst} (all in the first load); origin storage used: ${(measured.storedBytes / 1e9).toFixed(2)} GB`,
  );
  const path = writeResult(`browser-ViT-L-14-${dtype}`, {
    date: new Date().toISOString(),
    dtype,
    machine: machine(measured.adapter),
    cpus: cpus().length,
    cpuFlags,
    loadAverage: [loadBefore[0], loadavg()[0]],
    chromium: await browser.version(),
    weightRequests: afterFirst,
    storedBytes: measured.storedBytes,
    rows: rows.map(([what, seconds]) => ({ what, seconds })),
  });
  console.log(`wrote ${path}`);
} finally {
  await browser.close();
  await server.close();
}
