import { readFileSync } from 'node:fs';

/** The CPU's flags from /proc/cpuinfo (Linux); undefined where it cannot be read (other systems, Deno without --allow-read). */
function cpuFlags(): Set<string> | undefined {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('flags'));
    return line
      ? new Set(
          line
            .slice(line.indexOf(':') + 1)
            .trim()
            .split(/\s+/),
        )
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * How llvmpipe's SIMD width (LP_NATIVE_VECTOR_WIDTH, read once when Dawn loads the driver) was decided,
 * for `whylesion info`: the environment's value, 512 bits because the CPU has AVX-512, or Mesa's own default.
 */
export interface VectorWidthChoice {
  bits: number | undefined;
  reason: string;
}
let vectorWidth: VectorWidthChoice | undefined;

export function vectorWidthChoice(): VectorWidthChoice | undefined {
  return vectorWidth;
}

/**
 * Picks llvmpipe's vector width before Dawn starts: Mesa 25 defaults to min(CPU, 256) bits, but on an
 * AVX-512 CPU 512 bits (16-lane subgroups, 32 zmm registers) ran the image tower in 3.90 s instead of 4.54 s
 * with the same numbers (issue #16's measurement; bench/README.md), so the engine asks for 512 there unless
 * the environment sets a width.
 */
export function chooseVectorWidth(
  env: Record<string, string | undefined>,
  flags: Set<string> | undefined,
): VectorWidthChoice {
  const set = env.LP_NATIVE_VECTOR_WIDTH;
  if (set !== undefined)
    return { bits: Number(set) || undefined, reason: `LP_NATIVE_VECTOR_WIDTH=${set} from the environment` };
  if (flags?.has('avx512f')) {
    env.LP_NATIVE_VECTOR_WIDTH = '512';
    return { bits: 512, reason: 'the CPU has AVX-512 (avx512f), so the engine set LP_NATIVE_VECTOR_WIDTH=512' };
  }
  return {
    bits: undefined,
    reason: flags
      ? "no AVX-512 on this CPU: Mesa's default (at most 256 bits)"
      : "CPU flags unreadable: Mesa's default (at most 256 bits)",
  };
}

/** Decides the width once, before Dawn loads the driver. */
export function setVectorWidth(env: Record<string, string | undefined>): void {
  vectorWidth = chooseVectorWidth(env, cpuFlags());
}
