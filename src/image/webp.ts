/**
 * WebP decoding with libwebp compiled to WebAssembly (@jsquash/webp, the same family as the @jsquash/jpeg
 * used for JPEG): the library Pillow itself links, so lossless WebPs decode to Pillow's pixels exactly and
 * lossy ones to libwebp's output. The .wasm binary comes from the platform (node_modules on Node and Deno,
 * bundled in the browser).
 */
import decodeLibwebp, { init } from '@jsquash/webp/decode.js';
import { UserError } from '../errors.js';
import { platform } from '../platform/index.js';
import { copyToArrayBuffer } from './jpeg.js';

interface WebpInitOptions {
  wasmBinary: ArrayBuffer | Uint8Array;
}
const initLibwebp = init as unknown as (options: WebpInitOptions) => Promise<void>;

let ready: Promise<void> | undefined;

function ensureReady(): Promise<void> {
  ready ??= platform.webpWasm().then((wasmBinary) => initLibwebp({ wasmBinary }));
  return ready;
}

/** Decodes a still WebP (lossy or lossless, with or without alpha) to RGBA. */
export async function decodeWebpRgba(
  bytes: Uint8Array,
  name: string,
): Promise<{ width: number; height: number; data: Uint8Array }> {
  await ensureReady();
  let image: ImageData;
  try {
    image = await decodeLibwebp(copyToArrayBuffer(bytes));
  } catch (error) {
    throw new UserError(
      `${name} could not be decoded as WebP (libwebp refused it: it is damaged or truncated); re-export it as PNG or JPEG.`,
      { cause: error },
    );
  }
  return {
    width: image.width,
    height: image.height,
    data: new Uint8Array(image.data.buffer, image.data.byteOffset, image.data.byteLength),
  };
}
