/**
 * The Node (and Deno) platform: Dawn or the runtime's navigator.gpu, the file system, and jimp for the
 * non-JPEG formats. The browser bundle replaces this module with
 * ./browser.ts (see ./types.ts).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Jimp } from 'jimp';
import { bundledAsset } from '../assets.js';
import { UserError } from '../errors.js';
import { withNativeStderrMuted } from './native-stderr.js';
import { KNOBO_DIR_ENV, type Platform, type RgbaBitmap } from './types.js';
import { setVectorWidth, shaderCacheFolder } from './vector-width.js';

// Dawn's `create()` result must outlive every device made from it (if it is garbage-collected the process
// segfaults), and one serves every device, so it is made once per process: this memo holds it for the
// life of the process and never grows.
let dawnGpu: Promise<GPU> | undefined;

/** Node: Dawn through the `webgpu` package, created once per process and imported lazily (Deno never loads it). */
async function createDawnGpu(): Promise<GPU> {
  // Mesa's llvmpipe (the CPU driver) reads its thread count when the device is made. More threads than
  // cores measured up to 4x faster kernels on 2 cores (bench/README.md), so default to 16 unless the user chose.
  if (process.env.LP_NUM_THREADS === undefined) process.env.LP_NUM_THREADS = '16';
  setVectorWidth(process.env);
  const moduleName = 'webgpu';
  const dawn = (await import(moduleName)) as { create: (flags: string[]) => GPU; globals: object };
  Object.assign(globalThis, dawn.globals);
  const gpu = dawn.create([]);
  // The instance enumerates the adapters once, in this first call, and Dawn prints its limit warnings then.
  await withNativeStderrMuted(() => gpu.requestAdapter()).catch(() => null);
  return gpu;
}

const errnoOf = (error: unknown): string | undefined => (error as NodeJS.ErrnoException).code;

export const platform: Platform = {
  setting: (name) => process.env[name],

  webgpu() {
    const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
    if (nav?.gpu) return Promise.resolve(nav.gpu); // Deno
    dawnGpu ??= createDawnGpu();
    return dawnGpu;
  },

  noAdapterMessage:
    "No WebGPU adapter was found. On a machine without a GPU install Mesa's lavapipe driver " +
    '(run `sudo bash scripts/setup-webgpu.sh` from the whylesion folder, or on Debian 12: ' +
    '`apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1`), then try again.',

  async readImage(path) {
    return readFile(path).catch((cause: unknown) => {
      throw new UserError(`Cannot read the image ${path} (${errnoOf(cause) ?? cause}); check the path.`, { cause });
    });
  },

  async decodedPixels() {
    return undefined; // jimp images are handled by the shared code; Node has no other decoded image objects
  },

  async decodeOtherFormat(bytes, header, name) {
    // pngjs rescales 16-bit samples with rounding; Pillow keeps the high byte, so ask for the raw samples.
    const options = header.bitDepth === 16 ? { 'image/png': { skipRescale: true } } : undefined;
    // jimp's GIF decoder (omggif) reports image data that ends early or runs long with console.log, on stdout,
    // where it would land among the results; Pillow refuses such a GIF, so catch the message and refuse it too.
    const decoderWarnings: string[] = [];
    const log = console.log;
    if (header.format === 'gif') console.log = (...args: unknown[]) => decoderWarnings.push(args.join(' '));
    let bitmap: RgbaBitmap;
    try {
      bitmap = (await Jimp.fromBuffer(new Uint8Array(bytes).buffer, options)).bitmap;
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new UserError(
        `${name} could not be decoded as ${header.format.toUpperCase()} (${why}); re-export it as PNG or JPEG.`,
        { cause: error },
      );
    } finally {
      console.log = log;
    }
    if (decoderWarnings.some((w) => w.includes('gif stream'))) {
      throw new UserError(
        `${name} is a damaged or truncated GIF (its image data ${decoderWarnings.some((w) => w.includes('shorter')) ? 'ends early' : 'runs past its size'}); re-download or re-export it.`,
      );
    }
    return bitmap;
  },

  async jpegWasm() {
    // Node's fetch cannot read file: URLs, so the .wasm is read from disk (Deno takes this path too).
    const { createRequire } = await import('node:module');
    const jsPath = createRequire(import.meta.url).resolve('@jsquash/jpeg/codec/dec/mozjpeg_dec.js');
    return readFile(new URL('mozjpeg_dec.wasm', `file://${jsPath}`));
  },

  async webpWasm() {
    const { createRequire } = await import('node:module');
    const jsPath = createRequire(import.meta.url).resolve('@jsquash/webp/codec/dec/webp_dec.js');
    return readFile(new URL('webp_dec.wasm', `file://${jsPath}`));
  },

  async readKnoboFile(file) {
    const local = process.env[KNOBO_DIR_ENV];
    if (!local) return readFile(bundledAsset(`knobo/${file}`), 'utf8');
    return readFile(join(local, file), 'utf8').catch((cause: unknown) => {
      throw new UserError(
        `${KNOBO_DIR_ENV} is ${local}, which has no ${file}; point it at a copy of KnoBo's data (or unset it to use the lists the package ships).`,
        { cause },
      );
    });
  },

  async readBytes(path, what) {
    return readFile(path).catch((cause: unknown) => {
      throw new UserError(`Cannot read ${what} ${path} (${errnoOf(cause) ?? cause}); check the path.`, { cause });
    });
  },

  async readText(path, what) {
    return readFile(path, 'utf8').catch((cause: unknown) => {
      throw new UserError(`Cannot read ${what} ${path} (${errnoOf(cause) ?? cause}); check the path.`, { cause });
    });
  },
  freshShaderCache: () => {
    // Mesa's on-disk cache in the folder the engine will give Mesa for the vector width, asked before the first
    // device. Its layout depends on the Mesa build: Debian's 25.0.7 writes mesa_shader_cache_db/index (the "db"
    // layout), 26.1 mesa_shader_cache/index (multi-file), and MESA_DISK_CACHE_SINGLE_FILE mesa_shader_cache_sf/.
    const root = shaderCacheFolder(process.env);
    if (root === undefined) return false;
    const written = [
      join(root, 'mesa_shader_cache_db', 'index'),
      join(root, 'mesa_shader_cache', 'index'),
      join(root, 'mesa_shader_cache_sf'),
    ];
    return !written.some((path) => existsSync(path));
  },
};
