/**
 * The runtime-specific half of loading: opening a model, loading the tokenizer, keeping kernel choices. Node
 * and Deno use ./loaders.ts; the browser bundle swaps in ./loaders.browser.ts (scripts/build-web.mjs).
 */
import type { ShapeResult } from '../kernels/autotune.js';
import type { HubOptions } from '../io/hub.js';
import type { OpenedCheckpoint } from '../io/remote.js';
import type { KernelPolicy } from '../kernels/policy.js';
import type { Tokenizer } from '../families/index.js';

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

export interface Loaders {
  openModel(source: ModelSource, options: OpenModelOptions): Promise<OpenedCheckpoint>;
  /**
   * The tokenizer the families declare (`clip-bpe`, open_clip's SimpleTokenizer, the only kind so far) from
   * `vocabPath`, else the vocabulary the package ships; read where this runtime reads files.
   */
  loadTokenizer(vocabPath?: string): Promise<Tokenizer>;
  /** Kernel choices measured by tune(): applied at load, checked writable before tuning, saved after. */
  readonly tuning: {
    apply(policy: KernelPolicy, mode?: string): number;
    checkWritable(): void;
    save(policy: KernelPolicy, results: readonly ShapeResult[]): string | undefined;
  };
}
