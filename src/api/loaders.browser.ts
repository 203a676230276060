/**
 * The browser's loaders (replace ./loaders.ts in dist/web/whylesion.js): models read by HTTP range requests
 * and kept in the origin's private file system, the bundled vocabulary, and the built-in kernel rules.
 */
import clipMerges from 'virtual:clip-merges';
import { UserError } from '../errors.js';
import {
  BlobAccess,
  CONFIG_FILE,
  HttpRangeAccess,
  SAFETENSORS_FILE,
  checkedCheckpoint,
  fetchText,
  fileInFolder,
  hubFolderUrl,
  openBlobCheckpoint,
} from '../io/remote.js';
import { SafetensorsSource } from '../io/safetensors.js';
import { ModelStore } from '../io/storage.js';
import type { RandomAccess } from '../io/tensor-source.js';
import { platform } from '../platform/index.js';
import { gunzip } from '../tokenizer/gunzip.js';
import { ClipTokenizer } from '../tokenizer/tokenizer.js';
import type { Loaders, OpenModelOptions } from './loader-types.js';

/** Weights from a folder URL: from the kept copy when complete, else by range requests that also fill it. */
async function openFolderUrl(folder: string, options: OpenModelOptions) {
  const configUrl = fileInFolder(folder, CONFIG_FILE, globalThis.location?.href);
  const weightsUrl = fileInFolder(folder, SAFETENSORS_FILE, globalThis.location?.href);
  const store = options.storage === false ? undefined : await ModelStore.open();
  let configText = await store?.text(configUrl);
  if (configText === undefined) {
    configText = await fetchText(configUrl);
    await store?.putText(configUrl, configText);
  }
  let access: RandomAccess, identity: string;
  const kept = await store?.file(weightsUrl);
  if (kept) {
    access = new BlobAccess(kept, `the stored copy of ${weightsUrl}`);
    identity = `blob:${weightsUrl}:${kept.size}:${kept.lastModified}`;
    options.onDownload?.(SAFETENSORS_FILE, kept.size, kept.size);
  } else {
    const writerReady: {
      write?: (position: number, bytes: Uint8Array) => Promise<void>;
      finish?: () => Promise<void>;
    } = {};
    const http = await HttpRangeAccess.open(weightsUrl, {
      onPiece: (position, bytes) => writerReady.write?.(position, bytes),
      onBytes: (loaded, total) => options.onDownload?.(SAFETENSORS_FILE, loaded, total),
    });
    identity = http.etag ? `etag:${http.etag}` : `blob:${weightsUrl}:${http.size}:0`;
    const writer = await store?.writer(weightsUrl, http.size);
    if (writer) {
      writerReady.write = (position, bytes) => writer.write(position, bytes);
      writerReady.finish = () => writer.finish();
    }
    // Closing the source (after every tensor was read) commits the copy when it is whole.
    access = {
      size: http.size,
      read: (position, into) => http.read(position, into),
      close: async () => {
        await http.close();
        await writerReady.finish?.();
      },
    };
  }
  const source = await SafetensorsSource.fromAccess(access, weightsUrl);
  return checkedCheckpoint(configText, configUrl, source, weightsUrl, identity);
}

export const loaders: Loaders = {
  async openModel(source, options) {
    if (typeof source !== 'string') return openBlobCheckpoint(source);
    const folder = source.startsWith('hf-hub:') ? hubFolderUrl(source, options.hub) : source;
    return openFolderUrl(folder, options);
  },

  async loadTokenizer(vocabPath) {
    if (!vocabPath) return ClipTokenizer.fromBpeMerges(clipMerges);
    const bytes = await platform.readBytes(vocabPath, 'the CLIP vocabulary');
    const text = new TextDecoder().decode(vocabPath.endsWith('.gz') ? await gunzip(bytes) : bytes);
    return ClipTokenizer.fromBpeMerges(text);
  },

  tuning: {
    apply(_policy, mode = 'cached') {
      if (mode !== 'cached' && mode !== 'rules')
        throw new UserError(`Kernel tuning '${mode}' is not 'cached' or 'rules'; fix kernelTuning.`);
      return 0; // no tuning file in a page: the built-in rules
    },
    checkWritable() {},
    save: () => undefined,
  },
};
