import type { LoadProgress } from '../api/model.js';
import { formatBytes } from '../io/progress.js';
import { stderrIsTerminal } from './quiet-dawn.js';

/**
 * How often the live line is redrawn at most, and how often an unchanged phase is redrawn (its seconds tick):
 * every half second, so a main thread busy for a second (Dawn compiling a pipeline) still leaves no 2 s gap.
 */
const REDRAW_MS = 100;
const TICK_MS = 500;

/**
 * The one live line on stderr on a terminal: the phase the command is in (downloading, loading weights,
 * compiling kernels, encoding texts, embedding images), its progress and its elapsed seconds, ticking so
 * the terminal is not left silent. It is erased before anything goes to stdout
 * (`clear`), so results never share a line with it, and stdout is the same with or without it.
 * Off a terminal (a log, a pipe) and with --quiet it draws nothing: those get the plain lines of `Progress`.
 */
export class StatusLine {
  private phaseText = '';
  private detail = '';
  private phaseStarted = 0;
  private drawnAt = -Infinity;
  private drawn = false;
  private ticker: ReturnType<typeof setInterval> | undefined;
  private compiling = '';

  constructor(
    readonly quiet = false,
    readonly tty = stderrIsTerminal(),
    private readonly stream: NodeJS.WritableStream = process.stderr,
  ) {}

  get live(): boolean {
    return this.tty && !this.quiet;
  }

  /** A new phase: shown at once, then its seconds tick until the next phase or `stop`. */
  phase(text: string): void {
    if (!this.live) return;
    this.phaseText = text;
    this.detail = '';
    this.phaseStarted = Date.now();
    this.ticker ??= setInterval(() => this.draw(true), TICK_MS).unref();
    this.draw(true);
  }

  /** Progress within the phase (throttled unless `force`). */
  progress(detail: string, force = false): void {
    if (!this.live) return;
    this.detail = detail;
    this.draw(force);
  }

  /** A model load's own progress: downloads, weights, and kernels compiled (which also happens at later forwards). */
  readonly onLoadProgress = (event: LoadProgress): void => {
    if (!this.live) return;
    if (event.stage === 'download') {
      if (!this.phaseText.startsWith('downloading')) this.phase(`downloading ${event.file}`);
      this.progress(
        event.total ? `${formatBytes(event.loaded)} of ${formatBytes(event.total)}` : formatBytes(event.loaded),
      );
    } else if (event.stage === 'weights') {
      if (!this.phaseText.startsWith('loading weights')) this.phase('loading weights');
      this.progress(`${event.loaded}/${event.total} tensors`, event.loaded === event.total);
    } else {
      const was = this.compiling;
      this.compiling = event.compiled < event.requested ? `compiling kernels ${event.compiled}/${event.requested}` : '';
      // Shown at once when compiling starts and when it ends; the counts between are throttled.
      this.draw(event.compiled === event.requested || (was === '' && this.compiling !== ''));
    }
  };

  /** Erases the live line; the next phase, progress or tick draws it again. Call before writing to stdout. */
  clear(): void {
    if (!this.drawn) return;
    this.stream.write('\r\x1b[K');
    this.drawn = false;
  }

  /** Erases the line and stops ticking. */
  stop(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
    this.clear();
    this.phaseText = '';
  }

  private draw(force: boolean): void {
    if (!this.live || !this.phaseText) return;
    const now = Date.now();
    if (!force && now - this.drawnAt < REDRAW_MS) return;
    this.drawnAt = now;
    const seconds = Math.floor((now - this.phaseStarted) / 1000);
    const parts = [this.phaseText, this.detail, this.compiling, seconds > 0 ? `${seconds} s` : ''].filter(
      (p) => p !== '',
    );
    const columns = (this.stream as { columns?: number }).columns ?? Number(process.env.COLUMNS ?? 80);
    // One screen line, so that '\r' returns to its start.
    this.stream.write(`\r${parts.join(' · ').slice(0, Math.max(20, columns - 1))}\x1b[K`);
    this.drawn = true;
  }
}
