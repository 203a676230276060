/**
 * What differs between runtimes, behind one small interface: where WebGPU comes from, how files, models and
 * the shipped assets are read, and where kernel choices are kept. `platform/index.ts` is the Node / Deno
 * implementation; the browser bundle swaps it for `platform/browser.ts` (scripts/build-web.mjs), so the rest
 * of the library is one codebase with no runtime checks of its own.
 */
import type { Gpu } from '../gpu/gpu.js';
import type { ShapeResult } from '../kernels/autotune.js';
import type { ClipTokenizer } from '../tokenizer/tokenizer.js';
import type { ImageHeader } from '../image/header.js';
import type { OpenedCheckpoint } from '../weights/remote.js';
import type { HubOptions } from '../weights/hub.js';

/**
 * A model: a folder path (Node, Deno), `hf-hub:ID`, a folder URL (browser), or the picked
 * open_clip_config.json and open_clip_model.safetensors (File / Blob, any runtime).
 */
export type ModelSource = string | Iterable<Blob>;

export interface OpenModelOptions {
  hub?: Omit<HubOptions, 'onProgress'>;
  /** Bytes of a file fetched so far (downloads and range reads). */
  onDownload?: (file: string, loaded: number, total: number | undefined) => void;
  /** Browser: keep fetched weights in the origin's storage and read them from there next time (default true). */
  storage?: boolean;
}

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
  decodeOtherFormat(bytes: Uint8Array, header: ImageHeader, name: string): Promise<RgbaBitmap>;
  /** mozjpeg's WebAssembly binary. */
  jpegWasm(): Promise<ArrayBuffer | Uint8Array>;
  openModel(source: ModelSource, options: OpenModelOptions): Promise<OpenedCheckpoint>;
  /** The CLIP tokenizer from `vocabPath`, else the vocabulary the package ships. */
  loadTokenizer(vocabPath?: string): Promise<ClipTokenizer>;
  /** A file of KnoBo's data that the package ships (assets/knobo/). */
  readKnoboFile(file: string): Promise<string>;
  /** A text file the user names (a path, or a URL in the browser); `what` names it in errors. */
  readText(location: string, what: string): Promise<string>;
  /** Kernel choices measured by tune(): applied at load, checked writable before tuning, saved after. */
  readonly tuning: {
    apply(gpu: Gpu, mode?: string): number;
    checkWritable(): void;
    save(gpu: Gpu, results: readonly ShapeResult[]): string | undefined;
  };
}
