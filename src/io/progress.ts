/**
 * A one-line download progress bar (bytes, rate, ETA), redrawn in place with '\r'.
 * Pure logic: the caller supplies the writer and the clock, so this runs anywhere and tests need no TTY.
 */

/** One progress report for a file being downloaded; `loaded` counts bytes already on disk, resumed ones included. */
export interface DownloadProgress {
  file: string;
  loaded: number;
  total: number | undefined;
}

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB'];

/** Decimal units, as the Hugging Face Hub shows file sizes: 1710000000 -> "1.71 GB". */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  if (unit === 0) return `${bytes} B`;
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

/** "m:ss" below an hour, "h:mm:ss" above. */
export function formatDuration(seconds: number): string {
  const whole = Math.max(0, Math.round(seconds));
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = String(whole % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

const BAR_WIDTH = 20;

/**
 * The text of one progress line. `bytesPerSecond` is undefined until a rate can be measured;
 * without a known total there is no percentage, bar or ETA.
 */
export function renderProgressLine(
  file: string,
  loaded: number,
  total: number | undefined,
  bytesPerSecond: number | undefined,
): string {
  const parts = [file];
  if (total !== undefined && total > 0) {
    const fraction = Math.min(1, loaded / total);
    const filled = Math.round(fraction * BAR_WIDTH);
    parts.push(`${String(Math.floor(fraction * 100)).padStart(3)}%`);
    parts.push(`[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`);
    parts.push(`${formatBytes(loaded)} / ${formatBytes(total)}`);
  } else {
    parts.push(formatBytes(loaded));
  }
  if (bytesPerSecond !== undefined && bytesPerSecond > 0) {
    parts.push(`${formatBytes(bytesPerSecond)}/s`);
    if (total !== undefined && loaded < total) {
      parts.push(`ETA ${formatDuration((total - loaded) / bytesPerSecond)}`);
    }
  }
  return parts.join('  ');
}

/** Minimum time between redraws: about 10 per second is smooth without flooding the terminal. */
const REDRAW_INTERVAL_MS = 100;

/** Draws a progress line for one file on a terminal, throttled; `end()` finishes the line. */
export class ProgressBar {
  private startMs: number | undefined;
  private startLoaded = 0;
  private lastDrawMs = -Infinity;
  private drawn = false;

  constructor(
    private readonly write: (text: string) => void,
    private readonly nowMs: () => number,
  ) {}

  update({ file, loaded, total }: DownloadProgress, force = false): void {
    const now = this.nowMs();
    // The rate counts only bytes fetched in this run, not those resumed from an earlier one.
    if (this.startMs === undefined) {
      this.startMs = now;
      this.startLoaded = loaded;
    }
    if (!force && now - this.lastDrawMs < REDRAW_INTERVAL_MS) return;
    this.lastDrawMs = now;
    const seconds = (now - this.startMs) / 1000;
    const rate = seconds > 0 ? (loaded - this.startLoaded) / seconds : undefined;
    // '\x1b[K' clears what a longer previous line left behind.
    this.write(`\r${renderProgressLine(file, loaded, total, rate)}\x1b[K`);
    this.drawn = true;
  }

  /** Ends the line so whatever is printed next starts on a fresh one. */
  end(): void {
    if (this.drawn) this.write('\n');
    this.drawn = false;
  }
}
