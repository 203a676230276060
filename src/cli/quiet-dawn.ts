import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { nativeStderrMutable } from '../platform/native-stderr.js';

/**
 * Dawn (the `webgpu` package) prints two "artificially reduced" limit warnings on lavapipe from native code
 * straight to file descriptor 2. Where stderr is a terminal, a pipe or /dev/null the platform points fd 2
 * at /dev/null for the one call that prints them (platform/native-stderr.ts) and the CLI runs in one process.
 * Where it is a regular file or a socket (Node's child_process 'pipe') that cannot be undone exactly, so the
 * CLI runs its command in a child whose stderr passes through a filter that drops exactly those lines.
 *
 * That child cannot outlive this process: a thread of its own checks every 100 ms that its parent is still
 * this process and kills the child the moment it is not, however the parent died (kill -9 included), even
 * while the child's main thread is busy.
 */
const CHILD_ENV = 'WHYLESION_CLI_CHILD';
/** Makes the CLI treat stderr as a terminal (live progress lines); the parent sets it for its child. */
export const STDERR_TTY_ENV = 'WHYLESION_STDERR_TTY';
/** The parent's PID, which the child watches (its own parent PID changes when that process dies). */
const PARENT_ENV = 'WHYLESION_CLI_PARENT';
const LIFELINE_POLL_MS = 100;
const DAWN_NOISE =
  /^Warning: maxDynamic(Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.$/;

/** Whether this CLI invocation must run in a filtered child (it is not one, and fd 2 cannot be muted in place). */
export function needsFilteredChild(): boolean {
  return process.env[CHILD_ENV] !== '1' && !nativeStderrMutable();
}

/** Whether the user sees stderr on a terminal (or asked for terminal output with WHYLESION_STDERR_TTY=1). */
export function stderrIsTerminal(): boolean {
  return Boolean(process.stderr.isTTY) || process.env[STDERR_TTY_ENV] === '1';
}

/** Runs in the filtered child: a thread of its own ends the process the moment its parent is gone. */
export function holdLifeline(): void {
  const parent = process.env[PARENT_ENV];
  if (process.env[CHILD_ENV] !== '1' || !parent) return;
  // A thread, so that a busy main thread cannot delay it; it polls because a thread blocked in a read
  // would hold up the process's own exit.
  const source = `
    const parent = ${Number(parent)};
    const check = () => { if (process.ppid !== parent) process.kill(process.pid, 'SIGKILL'); };
    check();
    setInterval(check, ${LIFELINE_POLL_MS});`;
  new Worker(source, { eval: true }).unref();
}

/** Runs this same CLI invocation in a child with Dawn's noise removed from stderr; resolves to its exit code. */
export function runWithoutDawnNoise(): Promise<number> {
  const env: NodeJS.ProcessEnv = { ...process.env, [CHILD_ENV]: '1', [PARENT_ENV]: String(process.pid) };
  if (process.stderr.isTTY) {
    env[STDERR_TTY_ENV] = '1';
    env.COLUMNS ??= String(process.stderr.columns ?? 80);
  }
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: ['inherit', 'inherit', 'pipe'],
    env,
  });
  // Signals go to the child, which ends as it would alone; this process then ends the same way.
  const forward = (signal: NodeJS.Signals) => (): void => void child.kill(signal);
  const handlers: [NodeJS.Signals, () => void][] = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((signal) => [
    signal,
    forward(signal),
  ]);
  for (const [signal, handler] of handlers) process.on(signal, handler);
  let pending = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
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
