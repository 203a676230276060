import { describe, expect, it } from 'vitest';
import { awaitGpu, gpuWaitNaps } from '../src/runtime/gpu-wait.js';

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

function busyFor(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // stands for decoding or other synchronous work queued beside a GPU wait
  }
}

describe('awaitGpu (waiting on Dawn without spinning)', () => {
  it('passes the value and the rejection of the promise it waits on', async () => {
    await expect(awaitGpu(Promise.resolve(42))).resolves.toBe(42);
    await expect(awaitGpu(Promise.reject(new Error('device lost')))).rejects.toThrow('device lost');
  });

  it('sleeps while the loop is otherwise idle, and stops once nothing is pending', async () => {
    const before = gpuWaitNaps();
    // Settles once at least one nap was taken; the interval is the only other work, a few µs a turn.
    await awaitGpu(
      new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (gpuWaitNaps() > before) {
            clearInterval(check);
            resolve();
          }
        }, 5);
      }),
    );
    expect(gpuWaitNaps()).toBeGreaterThan(before);
    await nextTurn();
    await nextTurn();
    const settled = gpuWaitNaps();
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(gpuWaitNaps()).toBe(settled);
  });

  it('does not sleep after turns that ran other work', async () => {
    let release!: () => void;
    const pending = awaitGpu(new Promise<void>((resolve) => (release = resolve)));
    const before = gpuWaitNaps();
    for (let turn = 0; turn < 40; turn++) {
      busyFor(2);
      await nextTurn();
    }
    // Each turn ran 2 ms of other work, so no nap followed it (the first, armed before that work began, may sleep).
    expect(gpuWaitNaps() - before).toBeLessThanOrEqual(1);
    release();
    await pending;
  });

  it('keeps one sleeper for overlapping waits', async () => {
    const before = gpuWaitNaps();
    const releases: (() => void)[] = [];
    const waits = [0, 1, 2].map(() => awaitGpu(new Promise<void>((resolve) => releases.push(resolve))));
    // Forty idle turns: one sleeper naps at most once a turn, three would nap up to three times.
    for (let turn = 0; turn < 40; turn++) await nextTurn();
    expect(gpuWaitNaps() - before).toBeLessThanOrEqual(41);
    for (const release of releases) release();
    await Promise.all(waits);
  });
});
