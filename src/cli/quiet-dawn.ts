import { spawn } from 'node:child_process';

/**
 * Dawn (the `webgpu` package) prints two "artificially reduced" limit warnings on lavapipe from native
 * code straight to file descriptor 2, which nothing in Node can redirect. So the CLI runs its command in a
 * child process whose stderr passes through a filter that drops exactly those lines.
 */
const CHILD_ENV = 'WHYLESION_CLI_CHILD';
/** Tells the child that the user's stderr is a terminal (its own is a pipe), for live progress lines. */
export const STDERR_TTY_ENV = 'WHYLESION_STDERR_TTY';
const DAWN_NOISE = /^Warning: maxDynamic(Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.$/;

/** Whether this process is the filtered child (or filtering was not wanted). */
export function isFilteredChild(): boolean {
  return process.env[CHILD_ENV] === '1';
}

/** Whether the user sees stderr on a terminal, here or through the parent's filter. */
export function stderrIsTerminal(): boolean {
  return Boolean(process.stderr.isTTY) || process.env[STDERR_TTY_ENV] === '1';
}

/** Runs this same CLI invocation in a child with Dawn's noise removed from stderr; resolves to its exit code. */
export function runWithoutDawnNoise(): Promise<number> {
  const env: NodeJS.ProcessEnv = { ...process.env, [CHILD_ENV]: '1' };
  if (process.stderr.isTTY) {
    env[STDERR_TTY_ENV] = '1';
    env.COLUMNS ??= String(process.stderr.columns ?? 80);
  }
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: ['inherit', 'inherit', 'pipe'], env });
  // Signals go to the child, which ends as it would alone; this process then ends the same way.
  const forward = (signal: NodeJS.Signals) => (): void => void child.kill(signal);
  const handlers: [NodeJS.Signals, () => void][] = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((signal) => [signal, forward(signal)]);
  for (const [signal, handler] of handlers) process.on(signal, handler);
  let pending = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop()!;
    const kept = lines.filter((line) => !DAWN_NOISE.test(line));
    let out = kept.length > 0 ? `${kept.join('\n')}\n` : '';
    // A partial line (a live progress line ends in \r, not \n) goes out now unless it may be the start of the noise.
    if (!'Warning: maxDynamic'.startsWith(pending.slice(0, 19)) || pending === '') {
      out += pending;
      pending = '';
    }
    if (out) process.stderr.write(out);
  });
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      if (pending && !DAWN_NOISE.test(pending)) process.stderr.write(pending);
      for (const [name, handler] of handlers) process.off(name, handler);
      if (signal) {
        process.kill(process.pid, signal); // die the way the child died
        return;
      }
      resolve(code ?? 1);
    });
  });
}
