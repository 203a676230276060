/**
 * WHYLESION_TRACE=1 prints one stderr line per phase of a load or forward (`whylesion trace: +1234.5 ms
 * [t=EPOCH_MS] phase detail`: milliseconds since the process started, then the wall clock for lining up
 * processes), so that a cold start can be broken down without a profiler (bench/cold.ts parses them).
 * Node only; a no-op elsewhere and when the variable is unset.
 */
export function trace(phase: string, detail = ''): void {
  const proc = (
    globalThis as { process?: { env?: Record<string, string | undefined>; stderr?: { write(s: string): void } } }
  ).process;
  if (proc?.env?.WHYLESION_TRACE !== '1' || !proc.stderr) return;
  const now = performance.now();
  proc.stderr.write(
    `whylesion trace: +${now.toFixed(1)} ms [t=${(performance.timeOrigin + now).toFixed(1)}] ${phase}${detail ? ` ${detail}` : ''}\n`,
  );
}
