import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { UserError } from '../errors.js';

/** True for the errors of a full disk or an exhausted quota. */
export function isDiskFull(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/**
 * Fault-test hook for machines where a small tmpfs cannot be mounted: WHYLESION_FAULT_DISK_BYTES=N lets this
 * process's writeAllSync calls store N bytes in all, then writes short and fails with ENOSPC, as a full disk does.
 */
let simulatedDiskLeft: number | undefined;

/** Read on the first write, not at import: Deno without --allow-env refuses reading the environment. */
function diskLeft(): number {
  if (simulatedDiskLeft === undefined) {
    let budget: string | undefined;
    try {
      budget = process.env.WHYLESION_FAULT_DISK_BYTES;
    } catch {
      budget = undefined;
    }
    simulatedDiskLeft = budget === undefined ? Infinity : Number(budget);
  }
  return simulatedDiskLeft;
}

/** Writes all of `bytes` at the descriptor's position (writeSync may write fewer bytes than asked). */
export function writeAllSync(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length; ) {
    const allowed = Math.min(bytes.length - done, diskLeft());
    if (allowed === 0)
      throw Object.assign(new Error('ENOSPC: no space left on device, write (simulated)'), { code: 'ENOSPC' });
    const wrote = writeSync(fd, bytes, done, allowed);
    simulatedDiskLeft = diskLeft() - wrote;
    done += wrote;
  }
}

/** Flushes a folder's entries (a rename is durable only once its folder is); not possible everywhere. */
export function fsyncFolder(path: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    fsyncSync(fd);
  } catch {
    /* Windows and some file systems cannot open or sync a folder */
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Writes `path` whole or not at all: the pieces go to `path.<pid>.tmp`, which is synced, renamed into place and
 * its folder synced. On any failure the temporary file is removed; a full disk is a UserError saying so.
 */
export async function writeDurable(
  path: string,
  pieces: Iterable<string | Uint8Array> | AsyncIterable<string | Uint8Array>,
): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    const handle = await open(temporary, 'w');
    try {
      for await (const piece of pieces) await handle.appendFile(piece);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    if (isDiskFull(error))
      throw new UserError(
        `The disk holding ${path} is full, so it was not written (nothing was changed); free some space and run again.`,
        { cause: error },
      );
    throw error;
  }
  fsyncFolder(dirname(path));
}
