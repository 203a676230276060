// npm run bench:peers-chromium -- [--adapter swiftshader|lavapipe] [--model DIR] [--rounds 2] [--b8-budget 300]
// The Chromium half of bench:peers: our browser build against onnxruntime-web's WebGPU EP on the same page, on
// the same WebGPU adapter (each engine gets its own device from its own requestAdapter call with the same
// options; the page checks both report the same adapter), on the same inputs, alternating: image batch 1, text
// (3 prompts), image batch 8 (only when the estimate fits --b8-budget seconds). Both run an ONNX export of
// reference/clip_reference.py for ORT (bench/peers-cache.ts, shared with bench/peers.ts) and the checkpoint for
// us; before anything is timed every output must agree with ours (row cosine ≥ 0.9999, bench/peers-lib.ts).
// onnxruntime-web is not a dependency: it is installed on demand into ~/.cache/whylesion/peers and its dist/
// served to the page. Default model: the 2-block ViT-L/14 (bench/ViT-L-14-2blocks.json, every image kernel
// shape of ViT-L/14), because a full ViT-L/14 image takes minutes per call on SwiftShader.
// Writes bench/results/peers-chromium[-lavapipe].json in peers-node.json's shape.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { ADAPTER_FLAGS, launchChromium, parseAdapter } from './chromium.js';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { setVectorWidth } from '../src/platform/vector-width.js';
import { serveStatic } from '../src/serve/static.js';
import { loadTokenizer } from '../src/tokenizer/load.js';
import { benchPixels, flag, PROMPTS, REPO, simdFlags, writeResult } from './common.js';
import { ensureExport, ensurePackage, loads, lscpuFlags, OPSET } from './peers-cache.js';
import {
  type Agreement,
  b8Plan,
  checkAgreement,
  describePlacement,
  matmulProviders,
  median,
  parsePlacements,
  type Case,
  CASES,
  type Placement,
  timingTable,
} from './peers-lib.js';

/** The onnxruntime-web release this bench is written and checked against (the same as bench:peers' node one). */
const ORT_WEB_VERSION = '1.31.1';
const ADAPTER_HOST = { swiftshader: 'chromium, SwiftShader', lavapipe: 'chromium, lavapipe via GLES' } as const;

const argv = process.argv.slice(2);
const adapterName = parseAdapter(flag(argv, 'adapter', 'swiftshader'));
const rounds = Number(flag(argv, 'rounds', '2'));
const b8BudgetS = Number(flag(argv, 'b8-budget', '300'));
const modelDir = flag(argv, 'model', join(REPO, 'weights', 'synth-ViT-L-14-2blocks'));
const outName = flag(argv, 'out', adapterName === 'swiftshader' ? 'peers-chromium' : `peers-chromium-${adapterName}`);
if (!existsSync(join(modelDir, 'open_clip_config.json')))
  throw new Error(
    `no checkpoint in ${modelDir}: make it with \`node dist/src/cli/main.js synth --config bench/ViT-L-14-2blocks.json --out ${modelDir} --seed 0\` or pass --model DIR`,
  );

const loadStart = loads();
const ortWebDir = ensurePackage('onnxruntime-web', ORT_WEB_VERSION);
const checkpoint = await openCheckpoint(modelDir);
const exportDir = ensureExport(modelDir, checkpoint.identity.weights, checkpoint.identity.config);
const S = checkpoint.config.vision.imageSize;
const context = checkpoint.config.text.contextLength;
const embedDim = checkpoint.config.embedDim;
await checkpoint.source.close();
// weights/synth-ViT-L-14-f32-seed0 (bench:peers' checkpoint) is the full 'ViT-L-14'.
const modelName = basename(modelDir)
  .replace(/^synth-/, '')
  .replace(/-(f32|f16)-seed\d+$/, '');

// The inputs, as bench:peers makes them (deterministic pixels for 8 images; the model card's prompts), served
// to the page as raw little-endian arrays.
const inputs = mkdtempSync(join(tmpdir(), 'whylesion-peers-'));
const pixels = benchPixels(8, S);
writeFileSync(join(inputs, 'pixels.f32'), pixels);
writeFileSync(join(inputs, 'tokens.i32'), (await loadTokenizer()).tokenize(PROMPTS, context));

execFileSync(process.execPath, [join(REPO, 'scripts/build-web.mjs')], { stdio: 'inherit' });
const server = await serveStatic({
  '/': join(REPO, 'dist/web'),
  '/model/': modelDir,
  '/onnx/': { dir: exportDir, files: ['image.onnx', 'text.onnx'] },
  '/ort/': join(ortWebDir, 'dist'),
  '/inputs/': inputs,
});
// As bench:browser: the lavapipe adapter runs llvmpipe in Chromium's GPU process with Node's settings.
process.env.LP_NUM_THREADS ??= '16';
setVectorWidth(process.env);
const browser = await launchChromium(ADAPTER_FLAGS[adapterName]);
const chromiumVersion = await browser.version();

type EngineId = 'whylesion' | 'ort-web-webgpu';
const ENGINES: { id: EngineId; label: string }[] = [
  { id: 'whylesion', label: 'whylesion (WebGPU)' },
  { id: 'ort-web-webgpu', label: 'ONNX Runtime Web WebGPU EP' },
];

interface AdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  features: string[];
}
interface Setup {
  ours: AdapterInfo;
  ort: AdapterInfo;
  ortVersions: Record<string, string>;
  ortCreateS: { image: number; text: number };
  ortError?: string;
}

// ORT-web's verbose log carries the node placements (the same session_state.cc lines as onnxruntime-node's);
// everything else it prints at run time is kept out of the terminal.
const consoleLines: string[] = [];
let result: unknown;
try {
  const page = await browser.newPage();
  page.on('console', (message) => {
    const text = message.text();
    consoleLines.push(text);
    if (!/\[[VI]:onnxruntime|WebGPU Shader code/.test(text)) console.error(`  [page] ${text}`);
  });
  page.on('pageerror', (error) => console.error(`  [page error] ${String(error)}`));
  await page.goto(server.url);
  const setup = (await page.evaluate(
    async (o: { adapterName: string; S: number; context: number }): Promise<Setup> => {
      const w = window as unknown as Record<string, unknown>;
      const { module } = w.whylesion as { module: typeof import('../src/web.js') };
      const options: GPURequestAdapterOptions =
        o.adapterName === 'lavapipe' ? { featureLevel: 'compatibility' } : { powerPreference: 'high-performance' };
      const describe = (a: GPUAdapter): AdapterInfo => ({
        vendor: a.info.vendor,
        architecture: a.info.architecture,
        device: a.info.device,
        description: a.info.description,
        features: [...a.features].map(String).sort(),
      });
      /** A device with the adapter's own limits for what either engine asks (ORT-web's list and ours). */
      const makeDevice = async (a: GPUAdapter): Promise<GPUDevice> => {
        const keys = [
          'maxStorageBufferBindingSize',
          'maxBufferSize',
          'maxComputeWorkgroupStorageSize',
          'maxComputeInvocationsPerWorkgroup',
          'maxComputeWorkgroupSizeX',
          'maxComputeWorkgroupSizeY',
          'maxComputeWorkgroupSizeZ',
          'maxComputeWorkgroupsPerDimension',
          'maxStorageBuffersPerShaderStage',
        ] as const;
        const requiredLimits: Record<string, number> = {};
        for (const k of keys) requiredLimits[k] = a.limits[k];
        const wanted = ['shader-f16', 'timestamp-query', 'subgroups'] as GPUFeatureName[];
        return a.requestDevice({ requiredFeatures: wanted.filter((f) => a.features.has(f)), requiredLimits });
      };
      const oursAdapter = await navigator.gpu.requestAdapter(options);
      const ortAdapter = await navigator.gpu.requestAdapter(options);
      if (!oursAdapter || !ortAdapter) throw new Error(`no ${o.adapterName} adapter`);
      const ours = describe(oursAdapter);
      const ort = describe(ortAdapter);
      if (o.adapterName === 'lavapipe' && !/llvmpipe/.test(ours.description))
        throw new Error(`asked for lavapipe, got ${JSON.stringify(ours)}`);
      // Ours as bench:browser runs it: its own device on SwiftShader, the page's on the compatibility adapter.
      const oursDevice = o.adapterName === 'lavapipe' ? await makeDevice(oursAdapter) : undefined;
      const model = await module.loadModel('/model/', {
        dtype: 'f32',
        ...(oursDevice ? { device: oursDevice } : {}),
      });
      const pixels = new Float32Array(await (await fetch('/inputs/pixels.f32')).arrayBuffer());
      const ids = new Int32Array(await (await fetch('/inputs/tokens.i32')).arrayBuffer());
      interface OrtTensor {
        data: unknown;
      }
      interface OrtSession {
        run(feeds: Record<string, OrtTensor>, options: Record<string, unknown>): Promise<Record<string, OrtTensor>>;
      }
      const ortModule = (await import(/* @vite-ignore */ '/ort/ort.webgpu.min.mjs' as string)) as {
        env: {
          versions: Record<string, string>;
          logLevel: string;
          wasm: { wasmPaths: string; numThreads: number; proxy: boolean };
          webgpu: { device: GPUDevice };
        };
        Tensor: new (type: string, data: Float32Array | BigInt64Array, dims: number[]) => OrtTensor;
        InferenceSession: { create(url: string, options: Record<string, unknown>): Promise<OrtSession> };
      };
      ortModule.env.wasm.wasmPaths = '/ort/';
      // No cross-origin isolation on this page, so no SharedArrayBuffer: one wasm thread (only the shape
      // arithmetic ORT leaves on its CPU EP runs there).
      ortModule.env.wasm.numThreads = 1;
      ortModule.env.wasm.proxy = false;
      ortModule.env.logLevel = 'verbose';
      const sessions: Record<string, OrtSession> = {};
      const ortCreateS = { image: Number.NaN, text: Number.NaN };
      let ortError: string | undefined;
      try {
        ortModule.env.webgpu.device = await makeDevice(ortAdapter);
        for (const tower of ['image', 'text'] as const) {
          const t0 = performance.now();
          sessions[tower] = await ortModule.InferenceSession.create(`/onnx/${tower}.onnx`, {
            executionProviders: ['webgpu'],
            logSeverityLevel: 0,
            logVerbosityLevel: 0,
          });
          ortCreateS[tower] = (performance.now() - t0) / 1000;
        }
      } catch (error) {
        ortError = String(error);
      }
      ortModule.env.logLevel = 'warning';
      w.peersRun = async (engine: string, caseId: string, batch: number) => {
        const image = caseId.startsWith('image');
        const t0 = performance.now();
        let output: Float32Array;
        if (engine === 'whylesion') {
          output = image
            ? await model.model.encodePixels(pixels.subarray(0, batch * 3 * o.S * o.S), batch)
            : await model.model.encodeTokens(ids, batch);
        } else {
          const session = sessions[image ? 'image' : 'text'];
          if (!session) throw new Error(`ONNX Runtime Web has no ${image ? 'image' : 'text'} session: ${ortError}`);
          const feeds: Record<string, OrtTensor> = image
            ? { pixels: new ortModule.Tensor('float32', pixels.slice(0, batch * 3 * o.S * o.S), [batch, 3, o.S, o.S]) }
            : {
                tokens: new ortModule.Tensor(
                  'int64',
                  BigInt64Array.from(ids, (v) => BigInt(v)),
                  [batch, o.context],
                ),
              };
          // Verbose logging was for the placements at session creation; at run time it would add a console
          // message per GPU program to ORT's time.
          const outputs = await session.run(feeds, { logSeverityLevel: 3 });
          const data = outputs.embedding?.data;
          if (!(data instanceof Float32Array)) throw new Error('the export has no float32 "embedding" on the CPU');
          output = data;
        }
        return { seconds: (performance.now() - t0) / 1000, output: Array.from(output) };
      };
      return { ours, ort, ortVersions: ortModule.env.versions, ortCreateS, ...(ortError ? { ortError } : {}) };
    },
    { adapterName, S, context },
  )) as Setup;
  const adapterText = (a: AdapterInfo) =>
    [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ');
  if (adapterText(setup.ours) !== adapterText(setup.ort))
    throw new Error(`the engines got different adapters: ${adapterText(setup.ours)} vs ${adapterText(setup.ort)}`);
  const placements = parsePlacements(consoleLines.join('\n'));
  const placement: Record<string, Placement | undefined> = { image: placements[0], text: placements[1] };
  console.error(
    `adapter ${adapterText(setup.ours)}; ONNX Runtime Web ${setup.ortVersions.web ?? ORT_WEB_VERSION} sessions: image ${setup.ortCreateS.image.toFixed(1)} s, text ${setup.ortCreateS.text.toFixed(1)} s${setup.ortError ? `; failed: ${setup.ortError}` : ''}`,
  );
  for (const [tower, p] of Object.entries(placement)) if (p) console.error(`  ${tower}: ${describePlacement(p)}`);

  const run = (engine: EngineId, c: Case) =>
    page
      .evaluate(
        (e: string, id: string, batch: number) =>
          (
            (window as unknown as Record<string, unknown>).peersRun as (
              e: string,
              id: string,
              b: number,
            ) => Promise<{ seconds: number; output: number[] }>
          )(e, id, batch),
        engine,
        c.id,
        c.batch,
      )
      .then((r) => ({ seconds: r.seconds, output: Float32Array.from(r.output) }));

  const { timings, timing, finish: finishTimings } = timingTable();
  const agreements: Agreement[] = [];
  const progress = (engine: string, c: Case, what: string, s: number) =>
    console.error(`  ${engine} ${c.label} ${what}: ${s.toFixed(2)} s (load ${loads()[0]})`);
  const ortLabel = ENGINES[1]?.label ?? 'ONNX Runtime Web';
  const ortWorks = !setup.ortError;

  // Warm-up and agreement gate per case, then alternating timed rounds; batch 8 last, only within the budget.
  const warmAndTime = async (cases: Case[]) => {
    for (const c of cases) {
      const mine = await run('whylesion', c);
      timing('whylesion', c).warmupS = mine.seconds;
      progress('whylesion', c, 'warm-up', mine.seconds);
      if (!ortWorks) continue;
      const theirs = await run('ort-web-webgpu', c);
      // A disagreement throws (checkAgreement's sentence): nothing is timed and no result is written.
      agreements.push(checkAgreement(ortLabel, c.label, mine.output, theirs.output, embedDim));
      timing('ort-web-webgpu', c).warmupS = theirs.seconds;
      progress('ort-web-webgpu', c, `warm-up, min cosine ${agreements.at(-1)?.minCosine.toFixed(9)}`, theirs.seconds);
    }
    for (let round = 0; round < rounds; round++)
      for (const c of cases)
        for (const engine of ortWorks ? ENGINES : ENGINES.slice(0, 1)) {
          const r = await run(engine.id, c);
          timing(engine.id, c).runsS.push(r.seconds);
          progress(engine.id, c, `round ${round + 1}`, r.seconds);
        }
  };
  await warmAndTime(CASES.filter((c) => c.id !== 'image-b8'));
  const b8 = CASES.find((c) => c.id === 'image-b8');
  const b1Medians = ENGINES.filter((e) => e.id === 'whylesion' || ortWorks).map((e) =>
    median(timing(e.id, CASES[0] as Case).runsS),
  );
  const plan = b8Plan(b1Medians, rounds, b8BudgetS);
  if (b8) {
    if (plan.run) await warmAndTime([b8]);
    else for (const e of ENGINES) timing(e.id, b8).note = plan.note;
    console.error(`  image, batch 8: ${plan.note}`);
  }
  if (!ortWorks)
    for (const c of CASES) {
      const t = timing('ort-web-webgpu', c);
      t.note = `not run: ${setup.ortError}`;
    }
  finishTimings();
  const loadEnd = loads();

  result = {
    kind: 'peers',
    host: ADAPTER_HOST[adapterName],
    date: new Date().toISOString(),
    model: {
      config: modelName,
      description:
        modelName === 'ViT-L-14-2blocks'
          ? 'ViT-L/14 with 2 of its 24 image blocks and a 1-layer 64-wide text tower (bench/ViT-L-14-2blocks.json: every image kernel shape of ViT-L/14), f32 synthetic weights'
          : `${modelName} f32 (synthetic weights)`,
      dtype: 'f32',
      weights: checkpoint.identity.weights,
      onnxOpset: OPSET,
    },
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown CPU',
      cores: cpus().length,
      chromium: chromiumVersion,
      chromiumFlags: ADAPTER_FLAGS[adapterName],
      cpuFlags: simdFlags().join(' '),
      lscpuFlags: lscpuFlags(),
    },
    loadAverage: { start: loadStart, end: loadEnd },
    llvmpipe: {
      LP_NUM_THREADS: process.env.LP_NUM_THREADS,
      LP_NATIVE_VECTOR_WIDTH: process.env.LP_NATIVE_VECTOR_WIDTH,
    },
    rounds,
    b8BudgetS,
    cases: CASES,
    engines: [
      { id: 'whylesion', label: 'whylesion (WebGPU)', adapter: adapterText(setup.ours), features: setup.ours.features },
      {
        id: 'ort-web-webgpu',
        label: ortLabel,
        version: setup.ortVersions.web ?? ORT_WEB_VERSION,
        executionProvider: 'webgpu',
        bundle: 'ort.webgpu.min.mjs, env.wasm.numThreads 1, its own GPUDevice from a second requestAdapter',
        sessionCreateS: setup.ortCreateS,
        ...(setup.ortError ? { error: setup.ortError } : {}),
        placement,
        matmulProviders: [...new Set(Object.values(placement).flatMap((p) => (p ? matmulProviders(p) : [])))],
        adapter: adapterText(setup.ort),
        features: setup.ort.features,
      },
    ],
    agreement: agreements,
    timings,
  };
  const label = (id: string) => ENGINES.find((e) => e.id === id)?.label ?? id;
  console.log(
    `peers (Chromium ${chromiumVersion}, ${adapterName}): ${modelName} f32; adapter ${adapterText(setup.ours)}; ONNX Runtime Web ${setup.ortVersions.web ?? ORT_WEB_VERSION}; load average ${loadStart.join(' ')} -> ${loadEnd.join(' ')}`,
  );
  console.log('| case | engine | warm-up s | runs s | median s | per image s |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const c of CASES)
    for (const t of timings.filter((x) => x.case === c.id))
      console.log(
        `| ${c.label} | ${label(t.engine)} | ${t.warmupS?.toFixed(2) ?? '–'} | ${t.runsS.map((s) => s.toFixed(2)).join(', ') || '–'} | ${t.medianS?.toFixed(2) ?? '–'} | ${c.id === 'text' || t.medianS === null ? '–' : (t.medianS / c.batch).toFixed(2)} |${t.note ? ` ${t.note}` : ''}`,
      );
  for (const a of agreements) console.log(`agreement ${a.engine}, ${a.case}: min row cosine ${a.minCosine.toFixed(9)}`);
} finally {
  await browser.close().catch(() => undefined);
  await server.close();
  rmSync(inputs, { recursive: true, force: true });
}
if (result) console.log(`\nwrote ${writeResult(outName, result)}`);
