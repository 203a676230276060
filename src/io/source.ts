import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { UserError } from '../errors.js';
import {
  SafetensorsSource,
  encodeSafetensorsHeader,
  readSafetensorsHeader,
  tensorBytes,
  type SafetensorsOptions,
  type TensorData,
  type TensorLayoutEntry,
} from './safetensors.js';
import type { RandomAccess } from './tensor-source.js';

/** Positioned reads from a file on disk; never loads it whole. */
export class FileAccess implements RandomAccess {
  private constructor(
    private readonly handle: FileHandle,
    readonly size: number,
    private readonly path: string,
  ) {}

  static async open(path: string): Promise<FileAccess> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new UserError(`${path} does not exist; check the path.`, { cause: error });
      if (code === 'EISDIR')
        throw new UserError(`${path} is a folder, not a file; pass the file inside it.`, { cause: error });
      throw new UserError(`cannot open ${path} (${code ?? String(error)}); check its permissions.`, { cause: error });
    }
    const { size } = await handle.stat();
    return new FileAccess(handle, size, path);
  }

  async read(position: number, into: Uint8Array): Promise<void> {
    let done = 0;
    while (done < into.length) {
      // Node caps one read at 2 GiB; big tensors arrive in several reads.
      const { bytesRead } = await this.handle.read(into, done, Math.min(into.length - done, 1 << 30), position + done);
      if (bytesRead === 0)
        throw new UserError(
          `${this.path} ends early at byte ${position + done} (expected ${position + into.length}); re-download it.`,
        );
      done += bytesRead;
    }
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/** A safetensors file on disk, read tensor by tensor with positioned reads. */
export class SafetensorsFile extends SafetensorsSource {
  static async open(path: string, options: SafetensorsOptions = {}): Promise<SafetensorsFile> {
    const access = await FileAccess.open(path);
    try {
      const header = await readSafetensorsHeader(access, path, options);
      return new SafetensorsFile(access, header, path, header.metadata);
    } catch (error) {
      await access.close();
      throw error;
    }
  }
}

/** A tensor to write; `data` may be a function so that tensors are produced one at a time while streaming. */
export interface TensorToWrite extends TensorLayoutEntry {
  data: TensorData | (() => TensorData | Promise<TensorData>);
}

/**
 * Writes a safetensors file tensor by tensor (only one tensor's data is alive at a time when `data` is lazy),
 * into a temporary file that is renamed into place, so a crash never leaves a half-written file at `path`.
 */
export async function writeSafetensors(
  path: string,
  tensors: readonly TensorToWrite[],
  metadata?: Record<string, string>,
): Promise<void> {
  const { bytes: header, sizes } = encodeSafetensorsHeader(tensors, metadata);
  const temporary = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const handle = await open(temporary, 'wx');
  try {
    await handle.write(header, 0, header.length, 0);
    let position = header.length;
    for (let i = 0; i < tensors.length; i++) {
      const entry = tensors[i]!;
      const data = typeof entry.data === 'function' ? await entry.data() : entry.data;
      const bytes = tensorBytes(entry, data);
      for (let done = 0; done < bytes.length; ) {
        const { bytesWritten } = await handle.write(
          bytes,
          done,
          Math.min(bytes.length - done, 1 << 30),
          position + done,
        );
        done += bytesWritten;
      }
      position += sizes[i]!;
    }
    await handle.sync();
    await handle.close();
    await rename(temporary, path);
  } catch (error) {
    await handle.close().catch(() => undefined);
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
}
