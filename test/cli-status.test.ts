import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { runCli, TINY, VOCAB_URL } from './helpers.js';

/**
 * Phases on stderr, results on stdout: a terminal gets a live status line (WHYLESION_STDERR_TTY=1 makes the
 * CLI draw it as on one), a pipe gets plain lines, --quiet nothing; stdout is the same in all three, never
 * holds a '\r' or an escape, and on a shared terminal no result row ever lands on the status line.
 */
const CLI = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
const MODEL = fileURLToPath(new URL('model', TINY));
const IMAGES = fileURLToPath(new URL('images', TINY));
const env = { ...process.env, WHYLESION_BPE_VOCAB: fileURLToPath(VOCAB_URL) };
const TTY = { ...env, WHYLESION_STDERR_TTY: '1', COLUMNS: '200' };
const run = promisify(execFile);

/** What a terminal shows for `text`: '\r' returns to the line's start, ESC[K erases to its end. */
function rendered(text: string): string[] {
  return text.split('\n').map((raw) => {
    let line = '';
    let column = 0;
    for (let i = 0; i < raw.length; i++) {
      if (raw[i] === '\r') column = 0;
      else if (raw.startsWith('\x1b[K', i)) {
        line = line.slice(0, column);
        i += 2;
      } else {
        line = line.slice(0, column) + raw[i] + line.slice(column + 1);
        column++;
      }
    }
    return line;
  });
}

describe('stdout is the same on a terminal, a pipe and with --quiet', () => {
  for (const [command, extra] of [
    ['classify', ['--labels', 'dark brown,bleeding,-1 scar']],
    ['zeroshot', ['--labels', 'nevus,melanoma', '--format', 'table']],
    ['explain', ['--top', '3', '--format', 'csv']],
  ] as const) {
    it(`${command}: live phases on a terminal, identical results everywhere`, async () => {
      const args = [command, IMAGES, '--model', MODEL, '--batch', '1', ...extra];
      const terminal = await runCli(args, TTY);
      const piped = await runCli(args, env);
      const quiet = await runCli([...args, '--quiet'], TTY);
      for (const r of [terminal, piped, quiet]) expect(r.code, r.stderr).toBe(0);
      expect(terminal.stdout.length).toBeGreaterThan(0);
      expect(piped.stdout).toBe(terminal.stdout);
      expect(quiet.stdout).toBe(terminal.stdout);
      expect(terminal.stdout).not.toMatch(/[\r\x1b]/);
      // The terminal saw the phases; a pipe gets plain lines only; --quiet nothing.
      expect(terminal.stderr).toContain('\rloading weights');
      expect(terminal.stderr).toMatch(/\rcompiling kernels|· compiling kernels \d+\/\d+/);
      expect(terminal.stderr).toMatch(/\rencoding \d+ (label|prompt|concept)/);
      expect(piped.stderr).not.toMatch(/[\r\x1b]/);
      expect(quiet.stderr).toBe('');
    });
  }

  it('on one terminal for both streams, every result row is a line of its own', async () => {
    // A shell pipe, so the CLI runs in one process and its two streams keep their order.
    const shell = `"${process.execPath}" "${CLI}" classify "${IMAGES}" --model "${MODEL}" --batch 1 --labels "dark brown,bleeding" 2>&1 | cat`;
    const { stdout: both } = await run('sh', ['-c', shell], { env: TTY });
    const alone = await runCli(
      ['classify', IMAGES, '--model', MODEL, '--batch', '1', '--labels', 'dark brown,bleeding'],
      env,
    );
    const screen = rendered(both);
    for (const line of alone.stdout.split('\n').slice(0, -1)) expect(screen).toContain(line);
    expect(both).toContain('\x1b[K'); // the status line was drawn, and erased
  });
});
