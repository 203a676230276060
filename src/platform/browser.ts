/**
 * The browser platform (replaces ./index.ts in dist/web/whylesion.js; see ./types.ts): navigator.gpu,
 * fetch for URLs, the browser's own decoder for the formats other than JPEG and WebP, and KnoBo's lists, mozjpeg
 * and libwebp bundled.
 */
import jpegWasm from '@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm';
import webpWasm from '@jsquash/webp/codec/dec/webp_dec.wasm';
import knoboPubMed from '../../assets/knobo/skin_PubMed.txt';
import knoboStatPearls from '../../assets/knobo/skin_StatPearls.txt';
import knoboTextbooks from '../../assets/knobo/skin_Textbooks.txt';
import knoboWikipedia from '../../assets/knobo/skin_Wikipedia.txt';
import knoboPrompt from '../../assets/knobo/skin_prompt.txt';
import { UserError } from '../errors.js';
import type { Platform } from './types.js';

const KNOBO_FILES: Record<string, string> = {
  'skin_PubMed.txt': knoboPubMed,
  'skin_StatPearls.txt': knoboStatPearls,
  'skin_Textbooks.txt': knoboTextbooks,
  'skin_Wikipedia.txt': knoboWikipedia,
  'skin_prompt.txt': knoboPrompt,
};

async function fetchBytes(url: string, what: string): Promise<Uint8Array> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (cause) {
    throw new UserError(
      `Cannot fetch ${what} ${url} (${cause instanceof Error ? cause.message : String(cause)}); check the address.`,
      { cause },
    );
  }
  if (!response.ok) throw new UserError(`Cannot fetch ${what} ${url} (HTTP ${response.status}); check the address.`);
  return new Uint8Array(await response.arrayBuffer());
}

/** RGBA pixels of anything a 2D canvas can draw, read back unchanged where the image is opaque. */
function canvasPixels(image: CanvasImageSource, width: number, height: number): Uint8Array {
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext('2d', { colorSpace: 'srgb', willReadFrequently: true })!;
  context.drawImage(image, 0, 0);
  const data = context.getImageData(0, 0, width, height, { colorSpace: 'srgb' }).data;
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export const platform: Platform = {
  setting: () => undefined,

  async webgpu() {
    const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
    if (!gpu) throw new UserError(platform.noAdapterMessage);
    return gpu;
  },

  noAdapterMessage:
    'This browser offers no WebGPU adapter; use a recent Chrome or Edge (or Safari 26, Firefox 141 on Windows) with hardware acceleration on, over https or localhost.',

  readImage: (url) => fetchBytes(url, 'the image'),

  async decodedPixels(input) {
    if (typeof ImageData !== 'undefined' && input instanceof ImageData) {
      return {
        bitmap: {
          width: input.width,
          height: input.height,
          data: new Uint8Array(input.data.buffer, input.data.byteOffset, input.data.byteLength),
        },
      };
    }
    const drawable = [
      globalThis.ImageBitmap,
      globalThis.HTMLImageElement,
      globalThis.HTMLCanvasElement,
      globalThis.OffscreenCanvas,
    ].some((type) => type !== undefined && input instanceof type);
    if (!drawable) return undefined;
    const image = input as ImageBitmap | HTMLImageElement | HTMLCanvasElement | OffscreenCanvas;
    const width = 'naturalWidth' in image ? image.naturalWidth : image.width;
    const height = 'naturalHeight' in image ? image.naturalHeight : image.height;
    if (!width || !height)
      throw new UserError(
        'The image element has no pixels yet; wait for it to load (await img.decode()) before encoding it.',
      );
    return { bitmap: { width, height, data: canvasPixels(image, width, height) } };
  },

  async decodeOtherFormat(bytes, header, name) {
    // The browser decodes to 8-bit RGBA; Pillow's 16-bit handling cannot be reproduced from that.
    if (header.bitDepth === 16)
      throw new UserError(
        `${name} is a 16-bit PNG, which the browser decodes to 8 bits unlike Pillow; save it as an 8-bit PNG or a JPEG.`,
      );
    let bitmap: ImageBitmap;
    try {
      bitmap = await createImageBitmap(new Blob([bytes.slice()]), {
        colorSpaceConversion: 'none',
        premultiplyAlpha: 'none',
      });
    } catch (cause) {
      throw new UserError(
        `${name} could not be decoded as ${header.format.toUpperCase()} by this browser; re-export it as PNG or JPEG.`,
        { cause },
      );
    }
    try {
      return { width: bitmap.width, height: bitmap.height, data: canvasPixels(bitmap, bitmap.width, bitmap.height) };
    } finally {
      bitmap.close();
    }
  },

  jpegWasm: async () => jpegWasm,
  webpWasm: async () => webpWasm,

  async readKnoboFile(file) {
    const text = KNOBO_FILES[file];
    if (text === undefined)
      throw new UserError(`KnoBo's ${file} is not bundled in the browser build; fetch it and pass its lines instead.`);
    return text;
  },

  readBytes: (url, what) => fetchBytes(url, what),

  readText: async (url, what) => new TextDecoder().decode(await fetchBytes(url, what)),
  freshShaderCache: () => false, // the browser's shader caches are its own
};
