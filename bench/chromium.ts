// The Chromium the browser benches drive (chromium-headless-shell through puppeteer-core), and the flags that
// pick its WebGPU adapter: SwiftShader (Dawn's Vulkan backend; the default any user gets) or Mesa lavapipe
// (Dawn's GLES backend on ANGLE on Vulkan; a compatibility-mode adapter, see bench/README.md).
import { existsSync } from 'node:fs';
import puppeteer, { type Browser } from 'puppeteer-core';

export const ADAPTER_FLAGS = {
  swiftshader: ['--enable-features=Vulkan', '--use-angle=vulkan'],
  lavapipe: ['--enable-features=Vulkan', '--use-angle=vulkan', '--use-webgpu-adapter=opengles'],
} as const;
export type AdapterName = keyof typeof ADAPTER_FLAGS;

export function parseAdapter(value: string): AdapterName {
  if (!(value in ADAPTER_FLAGS)) throw new Error(`--adapter must be one of ${Object.keys(ADAPTER_FLAGS)}`);
  return value as AdapterName;
}

export function chromiumPath(): string {
  const found = [process.env.WHYLESION_CHROMIUM, '/usr/bin/chromium-headless-shell', '/usr/bin/chromium'].find(
    (p) => p && existsSync(p),
  );
  if (!found)
    throw new Error('no Chromium: install chromium-headless-shell (scripts/setup-webgpu.sh) or set WHYLESION_CHROMIUM');
  return found;
}

/** Chromium with WebGPU on, `flags` choosing the adapter; `env` reaches its GPU process (llvmpipe's LP_*). */
export function launchChromium(flags: readonly string[], env?: NodeJS.ProcessEnv): Promise<Browser> {
  return puppeteer.launch({
    executablePath: chromiumPath(),
    headless: 'shell',
    args: [
      '--no-sandbox',
      '--disable-dev-shm-usage',
      '--enable-unsafe-webgpu',
      // Without it Chromium reports SwiftShader's adapter info as empty strings; with it, device and description.
      '--enable-webgpu-developer-features',
      ...flags,
    ],
    protocolTimeout: 3_600_000,
    ...(env ? { env } : {}),
  });
}
