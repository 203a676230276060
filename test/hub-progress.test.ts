import { describe, expect, it } from 'vitest';

import { ProgressBar, formatBytes, formatDuration, renderProgressLine } from '../src/io/progress.js';

describe('progress formatting', () => {
  it('formats sizes in decimal units as the Hub shows them', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(1_500)).toBe('1.50 kB');
    expect(formatBytes(42_300_000)).toBe('42.3 MB');
    expect(formatBytes(1_710_000_000)).toBe('1.71 GB');
    expect(formatBytes(712_340_000)).toBe('712 MB');
  });

  it('formats durations as m:ss or h:mm:ss', () => {
    expect(formatDuration(0)).toBe('0:00');
    expect(formatDuration(59.6)).toBe('1:00');
    expect(formatDuration(125)).toBe('2:05');
    expect(formatDuration(3_725)).toBe('1:02:05');
  });

  it('shows percentage, bar, bytes, rate and ETA when the total is known', () => {
    // 500 MB of 2 GB at 50 MB/s: 25 %, 5 of 20 bar cells, 1500 MB left = 30 s.
    expect(renderProgressLine('w.safetensors', 500e6, 2e9, 50e6)).toBe(
      'w.safetensors   25%  [#####---------------]  500 MB / 2.00 GB  50.0 MB/s  ETA 0:30',
    );
  });

  it('shows only bytes and rate without a total, and no rate before one is measured', () => {
    expect(renderProgressLine('f', 2_000, undefined, 1_000)).toBe('f  2.00 kB  1.00 kB/s');
    expect(renderProgressLine('f', 0, 10, undefined)).toBe('f    0%  [--------------------]  0 B / 10 B');
  });
});

describe('ProgressBar', () => {
  it('redraws at most every 100 ms, measures the rate from its own start, and ends the line', () => {
    const output: string[] = [];
    let now = 1_000;
    const bar = new ProgressBar(
      (text) => output.push(text),
      () => now,
    );
    // Resumed at 1 MB of 3 MB: the rate must ignore that first megabyte.
    bar.update({ file: 'w', loaded: 1e6, total: 3e6 });
    now += 50;
    bar.update({ file: 'w', loaded: 1.1e6, total: 3e6 }); // too soon: not drawn
    now += 950;
    bar.update({ file: 'w', loaded: 2e6, total: 3e6 }); // 1 MB in 1 s
    bar.end();
    expect(output).toEqual([
      '\rw   33%  [#######-------------]  1.00 MB / 3.00 MB\x1b[K',
      '\rw   66%  [#############-------]  2.00 MB / 3.00 MB  1.00 MB/s  ETA 0:01\x1b[K',
      '\n',
    ]);
  });

  it('draws a forced update even within 100 ms, and writes nothing at the end if it never drew', () => {
    const output: string[] = [];
    const bar = new ProgressBar(
      (text) => output.push(text),
      () => 0,
    );
    bar.end();
    expect(output).toEqual([]);
    bar.update({ file: 'f', loaded: 5, total: 10 });
    bar.update({ file: 'f', loaded: 10, total: 10 }, true);
    expect(output).toHaveLength(2);
    expect(output[1]).toBe('\rf  100%  [####################]  10 B / 10 B\x1b[K');
  });
});
