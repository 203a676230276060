/**
 * JPEG decoding with mozjpeg (libjpeg-turbo's decoder compiled to WebAssembly, via @jsquash/jpeg, which
 * @jimp/wasm-jpeg wraps): its integer IDCT and fancy upsampling give the same pixels as Pillow's libjpeg-turbo.
 * The .wasm binary comes from the platform (read from node_modules on Node and Deno, bundled in the browser).
 */
import decodeMozjpeg, { init } from '@jsquash/jpeg/decode.js';
import { UserError } from '../errors.js';
import { platform } from '../platform/index.js';

interface MozjpegInitOptions {
  wasmBinary: ArrayBuffer | Uint8Array;
  /** libjpeg's error and warning messages arrive here instead of on stderr. */
  printErr: (message: string) => void;
}
const initMozjpeg = init as unknown as (options: MozjpegInitOptions) => Promise<void>;

let ready: Promise<void> | undefined;
const messages: string[] = [];

function ensureReady(): Promise<void> {
  ready ??= platform.jpegWasm().then((wasmBinary) => initMozjpeg({ wasmBinary, printErr: (m) => messages.push(m) }));
  return ready;
}

/**
 * A fresh ArrayBuffer holding exactly `bytes`. (Node's Buffer.slice() is a view whose .buffer can be a
 * shared pool holding other data, so `.slice().buffer` is not safe.)
 */
export function copyToArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return new Uint8Array(bytes).buffer;
}

/**
 * Decodes a baseline or progressive JPEG (grayscale or YCbCr) to RGBA without applying EXIF orientation.
 * Grayscale JPEGs come back with R = G = B = the luminance.
 */
export async function decodeJpegRgba(
  bytes: Uint8Array,
  name: string,
): Promise<{ width: number; height: number; data: Uint8Array }> {
  await ensureReady();
  messages.length = 0;
  let image: ImageData;
  try {
    // jsquash's flag is named the other way round: false leaves the EXIF orientation unapplied.
    image = await decodeMozjpeg(copyToArrayBuffer(bytes), { preserveOrientation: false });
  } catch (error) {
    const why = messages.join('; ') || String(error);
    throw new UserError(`${name} could not be decoded as JPEG (${why}); re-export it as a standard JPEG or PNG.`, {
      cause: error,
    });
  }
  // libjpeg only warns about a file that ends early (and fills in grey); Pillow refuses it, so do we.
  if (messages.some((m) => m.startsWith('Premature end'))) {
    throw new UserError(`${name} is a truncated JPEG (the data ends early); re-download or re-export it.`);
  }
  return {
    width: image.width,
    height: image.height,
    data: new Uint8Array(image.data.buffer, image.data.byteOffset, image.data.byteLength),
  };
}
