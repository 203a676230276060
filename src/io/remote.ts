/**
 * Checkpoints that are not folders on disk: a folder URL read by HTTP range requests, or files the user
 * picked (File / Blob). Runtime-neutral (fetch, Blob), so Node, Deno and browsers share it; the browser
 * adds its storage cache around the range reads (src/platform/browser.ts).
 */
import { UserError } from '../errors.js';
import { parseClipConfig, type ClipConfig } from '../model/config.js';
import { checkTensors } from '../model/layout.js';
import { sha256Tag, type CheckpointIdentity } from './identity.js';
import { SafetensorsSource } from './safetensors.js';
import type { RandomAccess, TensorSource } from './tensor-source.js';

export const CONFIG_FILE = 'open_clip_config.json';
export const SAFETENSORS_FILE = 'open_clip_model.safetensors';
const BIN_FILE = 'open_clip_pytorch_model.bin';

/** One read (HTTP range or Blob slice) covers at most this many bytes, so progress moves and memory stays flat. */
const PIECE_BYTES = 16 * 1024 * 1024;

export interface OpenedCheckpoint {
  config: ClipConfig;
  source: TensorSource;
  identity: CheckpointIdentity;
  /** A transformers checkpoint's own tokenizer: the folder holding vocab.json and merges.txt. */
  vocabPath?: string;
  /** A transformers checkpoint's parsed preprocessor_config.json, and where it came from. */
  preprocessor?: { raw: unknown; what: string };
}

/** Bytes fetched so far of one file, for progress reports. */
export type BytesProgress = (file: string, loaded: number, total: number) => void;

/** Positioned reads over a Blob (a picked File, or a file kept in browser storage); never reads it whole. */
export class BlobAccess implements RandomAccess {
  constructor(
    private readonly blob: Blob,
    private readonly what: string,
  ) {}

  get size(): number {
    return this.blob.size;
  }

  async read(position: number, into: Uint8Array): Promise<void> {
    if (position < 0 || position + into.length > this.blob.size) {
      throw new UserError(
        `${this.what} ends early (wanted bytes ${position}..${position + into.length} of ${this.blob.size}); pick or download it again.`,
      );
    }
    for (let done = 0; done < into.length; done += PIECE_BYTES) {
      const end = Math.min(into.length, done + PIECE_BYTES);
      into.set(new Uint8Array(await this.blob.slice(position + done, position + end).arrayBuffer()), done);
    }
  }

  async close(): Promise<void> {}
}

/**
 * Positioned reads over an HTTP(S) file by Range requests; `onBytes` hears every piece as it arrives. A server
 * that ignores Range (HTTP 200 with the whole file, as `python3 -m http.server` does) is read the same way, as
 * long as the reads go front to back (a safetensors file: the header, then the tensors in data order, which is
 * how the weights upload): its one body streams through, never held whole.
 */
export class HttpRangeAccess implements RandomAccess {
  private fetched = 0;
  /** The whole-file body, once the server has answered a range request with it. */
  private body: SequentialBody | undefined;

  private constructor(
    private readonly url: string,
    readonly size: number,
    private readonly fetchImpl: typeof fetch,
    private readonly onPiece?: (position: number, bytes: Uint8Array) => void | Promise<void>,
    private readonly onBytes?: (loaded: number, total: number) => void,
    /** The server's ETag for the file, when it sent one. */
    readonly etag?: string,
  ) {}

  /** Learns the file's size (a HEAD request) before any range is read. */
  static async open(
    url: string,
    options: {
      fetch?: typeof fetch;
      onPiece?: (position: number, bytes: Uint8Array) => void | Promise<void>;
      onBytes?: (loaded: number, total: number) => void;
    } = {},
  ): Promise<HttpRangeAccess> {
    const fetchImpl = options.fetch ?? fetch;
    const response = await request(fetchImpl, url, { method: 'HEAD' });
    const size = Number(response.headers.get('content-length'));
    if (!Number.isSafeInteger(size) || size <= 0) {
      throw new UserError(`${url} did not say how large it is (no Content-Length); serve it from a server that does.`);
    }
    const etag = response.headers.get('etag')?.replace(/^W\//, '').replace(/"/g, '') || undefined;
    return new HttpRangeAccess(url, size, fetchImpl, options.onPiece, options.onBytes, etag);
  }

  async read(position: number, into: Uint8Array): Promise<void> {
    if (position < 0 || position + into.length > this.size) {
      throw new UserError(
        `${this.url} ends early (wanted bytes ${position}..${position + into.length} of ${this.size}); check the file on the server.`,
      );
    }
    if (this.body) return this.readStreamed(position, into);
    for (let done = 0; done < into.length; done += PIECE_BYTES) {
      const end = Math.min(into.length, done + PIECE_BYTES);
      const first = position + done;
      const response = await request(this.fetchImpl, this.url, {
        headers: { Range: `bytes=${first}-${position + end - 1}` },
      });
      if (response.status !== 206) {
        if (first !== 0 || !response.body) {
          await response.body?.cancel();
          throw new UserError(
            `${this.url} was sent whole instead of the requested byte range (HTTP ${response.status}); serve it from a server that supports Range requests.`,
          );
        }
        // The server ignores Range: from here on, its one whole-file body serves every read, in order.
        this.body = new SequentialBody(response.body, this.url);
        return this.readStreamed(position, into);
      }
      const piece = new Uint8Array(await response.arrayBuffer());
      if (piece.length !== end - done) {
        throw new UserError(
          `${this.url} sent ${piece.length} bytes for a range of ${end - done}; check the file on the server.`,
        );
      }
      into.set(piece, done);
      await this.arrived(first, piece);
    }
  }

  private async readStreamed(position: number, into: Uint8Array): Promise<void> {
    const body = this.body!;
    if (position < body.position) {
      throw new Error(
        `${this.url} is streamed whole (the server ignores Range), so reads must go front to back; byte ${position} was asked for after ${body.position}`,
      );
    }
    // Bytes between reads (padding, tensors the model does not use) pass through to the stored copy.
    while (body.position < position) {
      const gap = new Uint8Array(Math.min(PIECE_BYTES, position - body.position));
      const at = body.position;
      await body.fill(gap);
      await this.arrived(at, gap);
    }
    for (let done = 0; done < into.length; done += PIECE_BYTES) {
      const piece = into.subarray(done, Math.min(into.length, done + PIECE_BYTES));
      await body.fill(piece);
      await this.arrived(position + done, piece);
    }
  }

  private async arrived(position: number, piece: Uint8Array): Promise<void> {
    await this.onPiece?.(position, piece);
    this.fetched += piece.length;
    this.onBytes?.(this.fetched, this.size);
  }

  async close(): Promise<void> {
    await this.body?.cancel();
  }
}

/** A response body read in order into caller-sized pieces, holding at most one network chunk besides. */
class SequentialBody {
  position = 0;
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private chunk: Uint8Array = new Uint8Array(0);

  constructor(
    stream: ReadableStream<Uint8Array>,
    private readonly url: string,
  ) {
    this.reader = stream.getReader();
  }

  async fill(into: Uint8Array): Promise<void> {
    let done = 0;
    while (done < into.length) {
      if (this.chunk.length === 0) {
        const next = await this.reader.read();
        if (next.done)
          throw new UserError(
            `${this.url} ended after ${this.position} bytes, before its declared size; check the file on the server.`,
          );
        this.chunk = next.value;
        continue;
      }
      const take = Math.min(this.chunk.length, into.length - done);
      into.set(this.chunk.subarray(0, take), done);
      this.chunk = this.chunk.subarray(take);
      done += take;
      this.position += take;
    }
  }

  async cancel(): Promise<void> {
    await this.reader.cancel().catch(() => undefined);
  }
}

async function request(fetchImpl: typeof fetch, url: string, init: RequestInit): Promise<Response> {
  let response: Response;
  try {
    response = await fetchImpl(url, init);
  } catch (cause) {
    throw new UserError(
      `Could not reach ${url} (${cause instanceof Error ? cause.message : String(cause)}); check the address and your connection.`,
      { cause },
    );
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new UserError(
      `${url} answered HTTP ${response.status}; check that the model folder holds ${CONFIG_FILE} and ${SAFETENSORS_FILE}.`,
    );
  }
  return response;
}

/** The `https://…/resolve/<revision>/` folder of a Hub repository named `hf-hub:ID[@revision]`. */
export function hubFolderUrl(id: string, options: { endpoint?: string; revision?: string } = {}): string {
  const [repo, atRevision] = id.slice('hf-hub:'.length).split('@');
  if (repo === undefined || !/^[\w.-]+\/[\w.-]+$/.test(repo))
    throw new UserError(`${id} is not a Hub model id; write hf-hub:OWNER/NAME, e.g. hf-hub:yyupenn/whylesionclip.`);
  const endpoint = (options.endpoint ?? 'https://huggingface.co').replace(/\/+$/, '');
  return `${endpoint}/${repo}/resolve/${encodeURIComponent(atRevision ?? options.revision ?? 'main')}/`;
}

/** Parses and checks a config against the tensors the weights hold; closes the source when they do not fit. */
export async function checkedCheckpoint(
  configText: string,
  configWhat: string,
  source: TensorSource,
  weightsWhat: string,
  weightsIdentity: string,
): Promise<OpenedCheckpoint> {
  try {
    let raw: unknown;
    try {
      raw = JSON.parse(configText);
    } catch (cause) {
      throw new UserError(`${configWhat} is not valid JSON; use the ${CONFIG_FILE} that came with the model.`, {
        cause,
      });
    }
    const config = parseClipConfig(raw, configWhat);
    checkTensors(config, new Map([...source.tensors].map(([name, t]) => [name, t.shape])), weightsWhat);
    return {
      config,
      source,
      identity: { weights: weightsIdentity, config: await sha256Tag(configText), source: weightsWhat },
    };
  } catch (error) {
    await source.close();
    throw error;
  }
}

/**
 * A checkpoint from picked files: the config is the one named open_clip_config.json (or any .json), the
 * weights the .safetensors one. Nothing is read whole; tensors are sliced from the Blob as they upload.
 */
export async function openBlobCheckpoint(files: Iterable<Blob>): Promise<OpenedCheckpoint> {
  const list = [...files];
  const nameOf = (blob: Blob): string => (blob as Partial<File>).name ?? '';
  const config = list.find((f) => nameOf(f) === CONFIG_FILE) ?? list.find((f) => nameOf(f).endsWith('.json'));
  const weights = list.find((f) => nameOf(f).endsWith('.safetensors'));
  if (!config || !weights) {
    const bin = list.some((f) => nameOf(f) === BIN_FILE);
    throw new UserError(
      `Pick both ${CONFIG_FILE} and ${SAFETENSORS_FILE} of the model` +
        (bin ? ` (a ${BIN_FILE} is not read here: convert it once with \`whylesion convert\`).` : '.'),
    );
  }
  const what = nameOf(weights) || 'the picked safetensors file';
  const source = await SafetensorsSource.fromAccess(new BlobAccess(weights, what), what);
  // Hashing 1.7 GB in a page is not done: a picked file is known by its name, size and time.
  const identity = `blob:${nameOf(weights)}:${weights.size}:${(weights as Partial<File>).lastModified ?? 0}`;
  return checkedCheckpoint(await config.text(), nameOf(config) || 'the picked config', source, what, identity);
}

/** Fetches a small text file (the config), with one-sentence errors. */
export async function fetchText(url: string, fetchImpl: typeof fetch = fetch): Promise<string> {
  return (await request(fetchImpl, url, {})).text();
}

/** The URL of `file` inside a model folder URL (a trailing slash is added when missing). */
export function fileInFolder(folder: string, file: string, base?: string): string {
  const withSlash = folder.endsWith('/') ? folder : `${folder}/`;
  try {
    return new URL(file, new URL(withSlash, base)).href;
  } catch (cause) {
    throw new UserError(`${folder} is not a URL; pass a model folder URL, hf-hub:ID or the picked model files.`, {
      cause,
    });
  }
}
