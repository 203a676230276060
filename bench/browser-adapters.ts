/**
 * Which WebGPU adapter Chromium gives a page on this machine, per launch flags and requestAdapter options:
 * launches chromium-headless-shell once per case, prints vendor / architecture / device / description,
 * isFallbackAdapter, subgroup sizes, the feature count and two limits (the table in bench/README.md).
 *
 *   npm run bench:browser-adapters
 */
import { launchChromium } from './chromium.js';
import { serveStatic } from '../src/serve/static.js';
import { REPO } from './common.js';

const LVP_ICD = '/usr/share/vulkan/icd.d/lvp_icd.json';
const CASES: { flags: string[]; env?: Record<string, string>; request: GPURequestAdapterOptions[] }[] = [
  {
    flags: ['--enable-features=Vulkan', '--use-angle=vulkan'],
    request: [{}, { forceFallbackAdapter: true }, { powerPreference: 'high-performance' }],
  },
  {
    flags: ['--enable-features=Vulkan', '--use-angle=vulkan', '--ignore-gpu-blocklist'],
    env: { VK_ICD_FILENAMES: LVP_ICD, VK_DRIVER_FILES: LVP_ICD },
    request: [{}],
  },
  {
    flags: [
      '--enable-features=Vulkan,VulkanFromANGLE,DefaultANGLEVulkan',
      '--use-vulkan=native',
      '--use-angle=vulkan',
      '--disable-gpu-sandbox',
      '--enable-dawn-features=allow_unsafe_apis',
    ],
    env: { VK_ICD_FILENAMES: LVP_ICD },
    request: [{}],
  },
  { flags: ['--enable-features=Vulkan', '--use-webgpu-adapter=default'], request: [{}] },
  { flags: ['--enable-features=Vulkan', '--use-webgpu-adapter=default', '--enable-gpu'], request: [{}] },
  { flags: ['--use-webgpu-adapter=default', '--disable-software-rasterizer'], request: [{}] },
  {
    flags: ['--enable-features=Vulkan', '--use-angle=vulkan', '--use-webgpu-adapter=opengles'],
    request: [{}, { featureLevel: 'compatibility' }],
  },
];

const server = await serveStatic({ '/': `${REPO}/examples/web` });
try {
  for (const c of CASES) {
    const browser = await launchChromium(c.flags, { ...process.env, ...c.env });
    try {
      const page = await browser.newPage();
      await page.goto(server.url);
      const adapters = await page.evaluate(async (requests: GPURequestAdapterOptions[]) => {
        const found: string[] = [];
        for (const request of requests) {
          const adapter = await navigator.gpu?.requestAdapter(request);
          const info = adapter?.info as
            | (GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number })
            | undefined;
          found.push(
            adapter && info
              ? `${[info.vendor, info.architecture, info.device, info.description].join(' / ')}; fallback ${info.isFallbackAdapter}; subgroups ${info.subgroupMinSize}-${info.subgroupMaxSize}; ${adapter.features.size} features (${['subgroups', 'timestamp-query', 'shader-f16'].filter((f) => adapter.features.has(f as GPUFeatureName)).join(', ') || 'none of subgroups, timestamp-query, shader-f16'}); maxStorageBufferBindingSize ${adapter.limits.maxStorageBufferBindingSize}`
              : 'null',
          );
        }
        return found;
      }, c.request);
      const env = Object.entries(c.env ?? {}).map(([k, v]) => `${k}=${v} `);
      console.log(`${env.join('')}${c.flags.join(' ')}`);
      for (const [i, request] of c.request.entries())
        console.log(`  requestAdapter(${JSON.stringify(request)}): ${adapters[i] ?? 'not reached'}`);
    } finally {
      await browser.close();
    }
  }
} finally {
  await server.close();
}
