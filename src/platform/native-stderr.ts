import { closeSync, constants, fstatSync, openSync } from 'node:fs';

/**
 * Dawn prints two "artificially reduced" limit warnings (lavapipe reports more dynamic buffers per pipeline
 * layout than Dawn supports) with fprintf(stderr) inside the first `requestAdapter()` call of each instance,
 * and offers no toggle, instance option or log callback that stops them. That call is synchronous, so file
 * descriptor 2 can point at /dev/null for exactly its duration. Node has no dup2, but open() returns the
 * lowest free descriptor: close(2) and open() land on 2.
 *
 * That can be undone exactly only where fd 2 has no file offset (a terminal, a pipe, /dev/null): reopening
 * a regular file would detach it from an offset shared with stdout (`>log 2>&1`), and a socket (what Node's
 * child_process gives a child for 'pipe') cannot be reopened by path at all. There the warnings pass.
 */
export function nativeStderrMutable(): boolean {
  if (process.platform !== 'linux' && process.platform !== 'darwin') return false;
  if (process.env.WHYLESION_DAWN_WARNINGS === '1') return false;
  try {
    const stat = fstatSync(2);
    return stat.isCharacterDevice() || stat.isFIFO();
  } catch {
    return false; // no fd 2 at all
  }
}

const descriptorPath = (fd: number): string => (process.platform === 'linux' ? `/proc/self/fd/${fd}` : `/dev/fd/${fd}`);

/** Runs the synchronous `call` with fd 2 on /dev/null where that can be undone exactly (see above), else as is. */
export function withNativeStderrMuted<T>(call: () => T): T {
  if (!nativeStderrMutable()) return call();
  let original: number;
  try {
    // A second writer keeps the terminal or pipe reachable by path, and keeps a pipe's reader from seeing its
    // end while fd 2 is away (fd 2 may be the pipe's only writer). Non-blocking: a pipe with no reader fails.
    original = openSync(descriptorPath(2), constants.O_WRONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch {
    return call();
  }
  closeSync(2);
  const devNull = openSync('/dev/null', constants.O_WRONLY);
  try {
    return call();
  } finally {
    // devNull is 2 unless another thread opened a file in the few instructions between close and open.
    closeSync(devNull);
    if (devNull === 2) openSync(descriptorPath(original), constants.O_WRONLY | constants.O_NOCTTY);
    closeSync(original);
  }
}
