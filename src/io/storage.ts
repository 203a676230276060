/**
 * Model files kept in the browser's origin private file system (OPFS), so a second visit reads the weights
 * from disk instead of the network. A file counts as kept only once every byte of it has been written (a
 * `.complete` marker beside it records its size); an interrupted first visit leaves nothing half-used.
 */
const FOLDER = 'whylesion-models';

/** OPFS names cannot hold '/', so URLs are escaped. */
const nameOf = (url: string): string => encodeURIComponent(url);

export class ModelStore {
  private constructor(private readonly dir: FileSystemDirectoryHandle) {}

  /** The store, or undefined where the browser offers no OPFS (then everything is simply fetched). */
  static async open(): Promise<ModelStore | undefined> {
    try {
      const root = await navigator.storage.getDirectory();
      return new ModelStore(await root.getDirectoryHandle(FOLDER, { create: true }));
    } catch {
      return undefined;
    }
  }

  /** The kept copy of `url`, complete, or undefined. */
  async file(url: string): Promise<File | undefined> {
    try {
      const marker = await (await this.dir.getFileHandle(`${nameOf(url)}.complete`)).getFile();
      const file = await (await this.dir.getFileHandle(nameOf(url))).getFile();
      return file.size === Number(await marker.text()) ? file : undefined;
    } catch {
      return undefined;
    }
  }

  async text(url: string): Promise<string | undefined> {
    return (await this.file(url))?.text();
  }

  async putText(url: string, text: string): Promise<void> {
    const writer = await this.writer(url, new TextEncoder().encode(text).length);
    await writer?.write(0, new TextEncoder().encode(text));
    await writer?.finish();
  }

  /** A writer that fills `url`'s copy piece by piece, in any order; undefined when storage refuses. */
  async writer(url: string, size: number): Promise<StoreWriter | undefined> {
    try {
      await this.dir.removeEntry(`${nameOf(url)}.complete`).catch(() => undefined);
      const handle = await this.dir.getFileHandle(nameOf(url), { create: true });
      return new StoreWriter(this.dir, url, size, await handle.createWritable({ keepExistingData: false }));
    } catch {
      return undefined;
    }
  }
}

export class StoreWriter {
  private readonly spans: [number, number][] = [];
  private failed = false;

  constructor(
    private readonly dir: FileSystemDirectoryHandle,
    private readonly url: string,
    private readonly size: number,
    private readonly stream: FileSystemWritableFileStream,
  ) {}

  /** Writes a piece; a storage failure (quota) only means the copy will not be kept. */
  async write(position: number, bytes: Uint8Array): Promise<void> {
    if (this.failed) return;
    try {
      await this.stream.write({ type: 'write', position, data: bytes.slice() });
      this.spans.push([position, position + bytes.length]);
    } catch {
      this.failed = true;
    }
  }

  /** Commits the copy when every byte arrived, else discards it. */
  async finish(): Promise<void> {
    try {
      if (this.failed || covered(this.spans) !== this.size) {
        await this.stream.abort();
        return;
      }
      await this.stream.close();
      const marker = await (
        await this.dir.getFileHandle(`${nameOf(this.url)}.complete`, { create: true })
      ).createWritable();
      await marker.write(String(this.size));
      await marker.close();
    } catch {
      // Not kept; the next visit fetches again.
    }
  }
}

/** Bytes covered by the union of half-open spans. */
function covered(spans: [number, number][]): number {
  const sorted = [...spans].sort((a, b) => a[0] - b[0]);
  let total = 0;
  let end = -Infinity;
  for (const [begin, stop] of sorted) {
    if (stop <= end) continue;
    total += stop - Math.max(begin, end);
    end = stop;
  }
  return total;
}
