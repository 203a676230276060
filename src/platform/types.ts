/**
 * What differs between runtimes at the bottom of the library, behind one small interface: where WebGPU comes
 * from, how files and the shipped assets are read, and how images in other formats are decoded. `platform/index.ts` is the Node / Deno
 * implementation; the browser bundle swaps it for `platform/browser.ts` (scripts/build-web.mjs), so the rest
 * of the library is one codebase with no runtime checks of its own. Opening models, loading the tokenizer and
 * keeping kernel choices compose higher layers, so they live in `api/loaders.ts` (swapped the same way).
 */

/** An RGBA bitmap as image decoders return it (8-bit, or 16-bit PNG samples unscaled). */
export interface RgbaBitmap {
  width: number;
  height: number;
  data: ArrayLike<number>;
}

export interface Platform {
  /** A WHYLESION_* / HF_* setting from the environment (Node, Deno); the browser has none. */
  setting(name: string): string | undefined;
  /** The WebGPU entry point (navigator.gpu, or Dawn on Node). */
  webgpu(): Promise<GPU>;
  /** The sentence shown when no adapter is found. */
  readonly noAdapterMessage: string;
  /** The bytes of an image named by a string: a file path (Node, Deno) or a URL (browser). */
  readImage(location: string): Promise<Uint8Array>;
  /** RGBA pixels of an image object this runtime decodes itself (browser: ImageBitmap, <img>, canvas, ImageData). */
  decodedPixels(input: unknown): Promise<{ bitmap: { width: number; height: number; data: Uint8Array } } | undefined>;
  /** Decodes a PNG, GIF, BMP or TIFF (or a CMYK JPEG) to RGBA. */
  decodeOtherFormat(bytes: Uint8Array, header: { format: string; bitDepth: number }, name: string): Promise<RgbaBitmap>;
  /** mozjpeg's WebAssembly binary. */
  jpegWasm(): Promise<ArrayBuffer | Uint8Array>;
  /** libwebp's WebAssembly decoder binary. */
  webpWasm(): Promise<ArrayBuffer | Uint8Array>;
  /** A file of KnoBo's data that the package ships (assets/knobo/). */
  readKnoboFile(file: string): Promise<string>;
  /** The bytes of a file the user names (a path, or a URL in the browser); `what` names it in errors. */
  readBytes(location: string, what: string): Promise<Uint8Array>;
  /** A text file the user names (a path, or a URL in the browser); `what` names it in errors. */
  readText(location: string, what: string): Promise<string>;
  /**
   * Whether Mesa keeps compiled shaders on disk here and holds none yet (a first run on this machine or in a
   * fresh container), so that compiling ahead on a second device would be kept for the first forwards. Ask
   * before this process creates a device: Mesa creates its cache files with the first one.
   */
  freshShaderCache(): boolean;
}

/** Where KnoBo's data is read from instead of the copy the package ships (Node, Deno). */
export const KNOBO_DIR_ENV = 'WHYLESION_KNOBO_DIR';
