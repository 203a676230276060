/**
 * The browser edition in Chromium (chromium-headless-shell, driven by puppeteer-core): the bundle and a
 * checkpoint (default: a synthetic ViT-L/14 in WhyLesionCLIP's exact layout, random weights) served from
 * 127.0.0.1; times the first load (HTTP Range reads into the GPU and into OPFS), the second load (from OPFS,
 * no weight requests), the text tower (3 prompts) and the image tower (1 image), and with --profile the GPU
 * time of every kernel of one image forward. Prints a table and writes
 * bench/results/browser-<model>-<dtype>-<adapter>[-<kernels>].json.
 *
 *   npm run bench:browser [-- --dtype f32] [--adapter swiftshader|lavapipe] [--kernels auto|portable|gpu]
 *                         [--model DIR] [--profile] [--skip-text]
 *
 * Adapters: `swiftshader` is what Chromium gives WebGPU on a GPU-less Linux machine (its bundled Vulkan
 * CPU driver, through Dawn's Vulkan backend). `lavapipe` is Dawn's OpenGL ES backend on ANGLE on Vulkan on
 * Mesa lavapipe (`--use-webgpu-adapter=opengles --use-angle=vulkan`), a compatibility-mode adapter the
 * page asks for with `featureLevel: 'compatibility'`; Chromium does not hand Dawn's Vulkan backend a
 * lavapipe adapter (bench/README.md says why).
 */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { basename, join } from 'node:path';
import { ADAPTER_FLAGS, launchChromium, parseAdapter } from './chromium.js';
import type { KernelTiming } from '../src/model/clip.js';
import { loadModel } from '../src/index.js';
import { setVectorWidth } from '../src/platform/vector-width.js';
import { serveStatic } from '../src/serve/static.js';
import { flag, machine, REPO, simdFlags, syntheticCheckpoint, writeResult } from './common.js';

const argv = process.argv;
const dtype = flag(argv, 'dtype', 'f32') as 'f32' | 'f16';
const adapterName = parseAdapter(flag(argv, 'adapter', 'swiftshader'));
const kernels = flag(argv, 'kernels', 'auto') as 'auto' | 'portable' | 'gpu' | 'cpu-subgroup';
const profile = argv.includes('--profile');
const skipText = argv.includes('--skip-text');
/** Kernel families of the Node runs (Dawn on lavapipe) measured after the browser, same image and checkpoint. */
const nodeKernels = flag(argv, 'node-kernels', 'auto').split(',').filter(Boolean) as (typeof kernels)[];
const lscpuFlags = (execFileSync('lscpu', { encoding: 'utf8' }).match(/^Flags:\s*(.*)$/m)?.[1] ?? '')
  .split(' ')
  .filter((f) => /^(avx|fma|sse4|f16c)/.test(f))
  .join(' ');

execFileSync(process.execPath, [join(REPO, 'scripts/build-web.mjs')], { stdio: 'inherit' });
const modelDir = flag(argv, 'model', '') || (await syntheticCheckpoint('ViT-L-14', 0, 'f32'));
const modelName = flag(argv, 'model', '') ? basename(modelDir.replace(/\/model\/?$/, '')) : 'ViT-L-14';
const server = await serveStatic({
  '/': join(REPO, 'dist/web'),
  '/model/': modelDir,
  '/examples/': join(REPO, 'examples'),
});
// The lavapipe adapter runs Mesa's llvmpipe in Chromium's GPU process: give it the threads and vector width
// the engine gives it in Node (src/platform), so the two sides run the same driver settings.
process.env.LP_NUM_THREADS ??= '16';
setVectorWidth(process.env);
const llvmpipeEnv = {
  LP_NUM_THREADS: process.env.LP_NUM_THREADS,
  LP_NATIVE_VECTOR_WIDTH: process.env.LP_NATIVE_VECTOR_WIDTH,
};
const browser = await launchChromium(ADAPTER_FLAGS[adapterName]);
const loadBefore = loadavg();
const chromiumVersion = await browser.version();
try {
  const page = await browser.newPage();
  page.on('console', (message) => console.error(`  [page] ${message.text()}`));
  await page.goto(server.url);
  const weightRequests = () => server.log.filter((l) => l.includes('open_clip_model.safetensors')).length;
  const measured = await page.evaluate(
    async (options: { dtype: string; adapterName: string; kernels: string; profile: boolean; skipText: boolean }) => {
      const { module } = (window as unknown as { whylesion: { module: typeof import('../src/web.js') } }).whylesion;
      const seconds = (t0: number) => {
        const s = (performance.now() - t0) / 1000;
        console.log(`step done in ${s.toFixed(1)} s`);
        return s;
      };
      // The lavapipe adapter is a compatibility-mode one: the engine's own request (core) would not get it,
      // so the page makes the device with the limits the engine asks for and hands it over.
      const adapter = await navigator.gpu.requestAdapter(
        options.adapterName === 'lavapipe'
          ? { featureLevel: 'compatibility' }
          : { powerPreference: 'high-performance' },
      );
      if (!adapter) throw new Error(`no ${options.adapterName} adapter`);
      const { vendor, architecture, device: deviceName, description } = adapter.info;
      const adapterInfo = {
        vendor,
        architecture,
        device: deviceName,
        description,
        subgroupMinSize: (adapter.info as { subgroupMinSize?: number }).subgroupMinSize,
        subgroupMaxSize: (adapter.info as { subgroupMaxSize?: number }).subgroupMaxSize,
        features: [...adapter.features].sort(),
        maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      };
      if (options.adapterName === 'lavapipe' && !/llvmpipe/.test(description))
        throw new Error(`asked for lavapipe, got ${JSON.stringify(adapterInfo)}`);
      let device: GPUDevice | undefined;
      if (options.adapterName === 'lavapipe') {
        const wanted = ['shader-f16', 'timestamp-query', 'subgroups'] as GPUFeatureName[];
        device = await adapter.requestDevice({
          requiredFeatures: wanted.filter((f) => adapter.features.has(f)),
          requiredLimits: {
            maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
            maxBufferSize: adapter.limits.maxBufferSize,
            maxStorageBuffersPerShaderStage: Math.min(adapter.limits.maxStorageBuffersPerShaderStage, 10),
            maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
            maxComputeInvocationsPerWorkgroup: adapter.limits.maxComputeInvocationsPerWorkgroup,
          },
        });
      }
      const load = () =>
        module.loadModel('/model/', {
          dtype: options.dtype as 'f32' | 'f16',
          kernels: options.kernels as 'auto',
          ...(device ? { device } : {}),
        });
      let t0 = performance.now();
      let model = await load();
      const firstLoad = seconds(t0);
      model.dispose();
      t0 = performance.now();
      model = await load();
      const secondLoad = seconds(t0);
      let textCold: number | undefined;
      let textWarm: number | undefined;
      let textError: string | undefined;
      if (!options.skipText) {
        try {
          t0 = performance.now();
          await model.encodeText(['dark brown', 'bleeding', 'irregular shape']);
          textCold = seconds(t0);
          t0 = performance.now();
          await model.encodeText(['a', 'b', 'c']);
          textWarm = seconds(t0);
        } catch (error) {
          textError = String(error);
          console.log(`text tower failed: ${textError}`);
        }
      }
      t0 = performance.now();
      const embedding = await model.encodeImage('/examples/lesion.png');
      const imageCold = seconds(t0);
      t0 = performance.now();
      await model.encodeImage('/examples/lesion.png');
      const imageWarm = seconds(t0);
      let kernelTimes: KernelTiming[] | undefined;
      if (options.profile) {
        const pixels = await model.preprocess('/examples/lesion.png');
        kernelTimes = await model.model.profilePixels(pixels, 1);
      }
      const engineAdapter = model.adapter;
      model.dispose();
      device?.destroy();
      const storage = await navigator.storage.estimate();
      return {
        firstLoad,
        secondLoad,
        textCold,
        textWarm,
        textError,
        imageCold,
        imageWarm,
        embedding: Array.from(embedding[0] ?? []),
        adapterInfo,
        engineAdapter,
        clock: adapter.features.has('timestamp-query') ? 'timestamp-query' : 'wall clock, one submit per kernel',
        kernelTimes,
        storedBytes: storage.usage ?? 0,
      };
    },
    { dtype, adapterName, kernels, profile, skipText },
  );
  const afterFirst = weightRequests();
  const rows = [
    ['first load (range requests → GPU + OPFS)', measured.firstLoad],
    ['second load (OPFS → GPU)', measured.secondLoad],
    ['text tower, 3 prompts, first', measured.textCold],
    ['text tower, 3 prompts, warm', measured.textWarm],
    ['image tower, 1 image, first', measured.imageCold],
    ['image tower, 1 image, warm', measured.imageWarm],
  ] as const;
  const adapterText = machine(measured.adapterInfo);
  console.log(`\n${modelName} (${dtype} weights, kernels ${kernels}) in Chromium, ${adapterText}`);
  for (const [what, s] of rows)
    console.log(`  ${what.padEnd(44)} ${s === undefined ? '       –' : s.toFixed(2).padStart(8)} s`);
  if (measured.textError) console.log(`  text tower failed: ${measured.textError}`);
  console.log(
    `  weight requests: ${afterFirst} (all in the first load); origin storage used: ${(measured.storedBytes / 1e9).toFixed(2)} GB`,
  );
  const byKernel = measured.kernelTimes ? summarize(measured.kernelTimes) : undefined;
  await browser.close();
  const nodeRuns = [];
  for (const family of nodeKernels) nodeRuns.push(await nodeRun(family, measured.embedding));
  for (const run of nodeRuns)
    console.log(
      `  Node (Dawn → lavapipe, kernels ${run.kernels}): image warm ${run.imageWarm.toFixed(2)} s; cosine with the page's embedding ${run.cosineWithPage.toFixed(7)}; Chromium / Node ${(measured.imageWarm / run.imageWarm).toFixed(1)}×`,
    );
  if (byKernel) {
    console.log(`\nimage tower, batch 1, per kernel (${measured.clock}):`);
    for (const k of byKernel)
      console.log(
        `  ${k.kernel.padEnd(22)} ${String(k.calls).padStart(5)} ${k.ms.toFixed(1).padStart(10)} ms  ${k.rate}`,
      );
  }
  const suffix = kernels === 'auto' ? '' : `-${kernels}`;
  const path = writeResult(`browser-${modelName}-${dtype}-${adapterName}${suffix}`, {
    date: new Date().toISOString(),
    model: modelName,
    dtype,
    adapter: adapterName,
    kernels,
    chromiumFlags: ADAPTER_FLAGS[adapterName],
    llvmpipeEnv,
    machine: adapterText,
    adapterInfo: measured.adapterInfo,
    engineAdapter: measured.engineAdapter,
    cpus: cpus().length,
    cpuFlags: lscpuFlags,
    simdFlags: simdFlags(),
    loadAverage: [loadBefore[0], loadavg()[0]],
    chromium: chromiumVersion,
    weightRequests: afterFirst,
    storedBytes: measured.storedBytes,
    rows: rows.map(([what, seconds]) => ({ what, seconds: seconds ?? null })),
    textError: measured.textError,
    profile: byKernel ? { clock: measured.clock, kernels: byKernel } : undefined,
    node: nodeRuns,
  });
  console.log(`wrote ${path}`);
} finally {
  await browser.close().catch(() => undefined);
  await server.close();
}

/** The same checkpoint and image through the engine in Node (Dawn on lavapipe): warm image time, profile, cosine. */
async function nodeRun(family: typeof kernels, pageEmbedding: number[]) {
  const model = await loadModel(modelDir, { dtype, kernels: family, kernelTuning: 'rules' });
  try {
    const image = join(REPO, 'examples/lesion.png');
    const [embedding] = await model.encodeImage(image);
    const t0 = performance.now();
    await model.encodeImage(image);
    const imageWarm = (performance.now() - t0) / 1000;
    const kernelTimes =
      profile && model.model.gpu.hasTimestamps
        ? summarize(await model.model.profilePixels(await model.preprocess(image), 1))
        : undefined;
    if (kernelTimes) {
      console.log(`\nNode, kernels ${family}, image tower, batch 1, per kernel (timestamp-query):`);
      for (const k of kernelTimes)
        console.log(
          `  ${k.kernel.padEnd(22)} ${String(k.calls).padStart(5)} ${k.ms.toFixed(1).padStart(10)} ms  ${k.rate}`,
        );
    }
    return {
      kernels: family,
      adapter: machine(model.adapter),
      imageWarm,
      cosineWithPage: cosine(embedding ?? new Float32Array(), pageEmbedding),
      profile: kernelTimes,
    };
  } finally {
    model.dispose();
  }
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    dot += x * y;
    aa += x * x;
    bb += y * y;
  }
  return dot / Math.sqrt(aa * bb);
}

function summarize(times: KernelTiming[]) {
  const byKernel = new Map<string, { calls: number; ms: number; flops: number; bytes: number }>();
  for (const t of times) {
    const k = byKernel.get(t.kernel) ?? { calls: 0, ms: 0, flops: 0, bytes: 0 };
    k.calls++;
    k.ms += t.ms;
    k.flops += t.flops ?? 0;
    k.bytes += t.bytes ?? 0;
    byKernel.set(t.kernel, k);
  }
  return [...byKernel]
    .sort((a, b) => b[1].ms - a[1].ms)
    .map(([kernel, k]) => ({
      kernel,
      calls: k.calls,
      ms: Number(k.ms.toFixed(2)),
      rate:
        k.flops > 0
          ? `${(k.flops / k.ms / 1e6).toFixed(2)} GFLOP/s`
          : k.bytes > 0
            ? `${(k.bytes / k.ms / 1e6).toFixed(2)} GB/s`
            : '',
    }));
}
