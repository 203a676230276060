/** Node edge of the image module: reads a file and preprocesses it. */
import { readFile } from 'node:fs/promises';
import { UserError } from '../errors.js';
import { preprocessImage, type PreprocessOptions } from './index.js';

/** Reads an image file and returns open_clip's eval preprocessing of it, float32 [3, size, size]. */
export async function preprocessImageFile(path: string, opts: PreprocessOptions = {}): Promise<Float32Array> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EISDIR'
          ? 'is a directory'
          : `cannot be read (${code ?? String(error)})`;
    throw new UserError(`The image ${path} ${why}; check the path.`, { cause: error });
  }
  return preprocessImage(bytes, opts, path);
}
