/**
 * Awaiting the GPU without spinning a core.
 *
 * While any of its promises is pending (mapAsync, onSubmittedWorkDone, createComputePipelineAsync), Dawn's
 * Node binding re-arms `setImmediate` to poll for completion, so the event loop never sleeps: the JS thread
 * takes a whole core for the wait. On a CPU adapter that core is the GPU (llvmpipe's threads), so a 2-core
 * machine ran ViT-L/14 forwards ~20 % slower and the text tower ~30 % slower (measured, see bench/README).
 *
 * `awaitGpu` adds one more immediate to each turn of the loop while a wait is pending, which sleeps 1 ms
 * on `Atomics.wait` when the turn before it did no other work. Dawn still polls once per turn, so a result
 * is seen within about 1 ms; a turn that ran other callbacks (I/O, timers, decoding) is followed by no
 * sleep, so work queued beside a GPU wait runs at full speed. Nothing global is replaced.
 *
 * Only in Node: Deno's WebGPU is not Dawn's Node binding, and browsers forbid `Atomics.wait` on the
 * main thread.
 */

const NAP_MS = 1;
/** A turn that took longer than this (ms) between two naps ran other work: the next nap is skipped. */
const BUSY_TURN_MS = 0.25;

/** The event loop is one per thread, so one sleeper serves every Gpu's waits (two would each nap per turn). */
const sleeper = {
  cell: undefined as Int32Array | undefined,
  pendingWaits: 0,
  armed: false,
  lastTurnEnd: 0,
  napsTaken: 0,
  canSleep: true,
};

const canNap = ((): boolean => {
  const g = globalThis as {
    Deno?: unknown;
    process?: { versions?: { node?: string } };
    setImmediate?: unknown;
  };
  return g.Deno === undefined && typeof g.process?.versions?.node === 'string' && typeof g.setImmediate === 'function';
})();

function napTurn(): void {
  if (sleeper.pendingWaits === 0) {
    sleeper.armed = false;
    return;
  }
  if (sleeper.canSleep && performance.now() - sleeper.lastTurnEnd < BUSY_TURN_MS) {
    try {
      sleeper.cell ??= new Int32Array(new SharedArrayBuffer(4));
      Atomics.wait(sleeper.cell, 0, 0, NAP_MS);
      sleeper.napsTaken++;
    } catch {
      // A thread that may not block (an Electron renderer has Node's globals): poll as Dawn does.
      sleeper.canSleep = false;
    }
  }
  sleeper.lastTurnEnd = performance.now();
  setImmediate(napTurn);
}

/** Awaits a promise that Dawn's Node binding settles, sleeping instead of spinning while it is pending. */
export async function awaitGpu<T>(pending: Promise<T>): Promise<T> {
  if (!canNap || !sleeper.canSleep) return pending;
  sleeper.pendingWaits++;
  if (!sleeper.armed) {
    sleeper.armed = true;
    sleeper.lastTurnEnd = performance.now();
    setImmediate(napTurn);
  }
  try {
    return await pending;
  } finally {
    sleeper.pendingWaits--;
  }
}

/** How many 1 ms naps awaitGpu has taken in this thread (for tests and traces). */
export function gpuWaitNaps(): number {
  return sleeper.napsTaken;
}
