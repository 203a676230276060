import { readFileSync } from 'node:fs';
import { join } from 'node:path';

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
  /** The MESA_SHADER_CACHE_DIR Mesa was given (the width's own folder, or the user's); absent: Mesa's default. */
  shaderCache?: string;
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

const cacheDisabled = (env: Record<string, string | undefined>): boolean =>
  /^(1|true|yes)$/i.test(env.MESA_SHADER_CACHE_DISABLE ?? '');

/** Mesa's base for its cache folders when none is named. */
const cacheBase = (env: Record<string, string | undefined>, home: string | undefined): string | undefined =>
  env.XDG_CACHE_HOME || (home ? join(home, '.cache') : undefined);

/**
 * Where Mesa should keep llvmpipe's compiled shaders for the chosen width. Mesa 25.0.7 keys its on-disk cache by
 * the CPU (lp_disk_cache_create) and each shader by its NIR, not by LP_NATIVE_VECTOR_WIDTH, so a process at one
 * width loads code another compiled at a wider one. That code still computes the same numbers (a workgroup then
 * fills part of a wider subgroup), but the 8-lane matmul tile compiled at 512 bits ran 34.6 instead of 45.5
 * GFLOP/s in a 256-bit process (bench/README.md, eighth pass), and `npm test`'s reruns at other widths would
 * test the first width's code. So wherever a width is set (by the user or by the engine), its shaders get a
 * folder of their own beside Mesa's: <XDG_CACHE_HOME or ~/.cache>/mesa_shader_cache_lp<bits>. Without a width
 * (Mesa's default) Mesa's own folder stays; a MESA_SHADER_CACHE_DIR the user set, or a disabled cache, is kept.
 */
export function widthShaderCacheDir(
  env: Record<string, string | undefined>,
  home: string | undefined,
): string | undefined {
  if (env.MESA_SHADER_CACHE_DIR || cacheDisabled(env)) return undefined;
  const bits = Number(env.LP_NATIVE_VECTOR_WIDTH);
  if (!Number.isInteger(bits) || bits <= 0) return undefined;
  const base = cacheBase(env, home);
  return base ? join(base, `mesa_shader_cache_lp${bits}`) : undefined;
}

/**
 * The folder Mesa 25 keeps compiled shaders in once the engine's settings are applied (llvmpipeEnv):
 * MESA_SHADER_CACHE_DIR, else $XDG_CACHE_HOME, else ~/.cache; undefined where the cache is off.
 */
export function shaderCacheFolder(env: Record<string, string | undefined>): string | undefined {
  const applied = llvmpipeEnv(env);
  if (cacheDisabled(applied)) return undefined;
  return applied.MESA_SHADER_CACHE_DIR || cacheBase(applied, applied.HOME ?? applied.USERPROFILE);
}

/**
 * The llvmpipe settings the engine gives Mesa, applied to a copy of `env`: the vector width (chooseVectorWidth)
 * and the shader cache folder for it (widthShaderCacheDir). Pure, so that the first-run check can ask where the
 * cache will be before any device exists.
 */
export function llvmpipeEnv(env: Record<string, string | undefined>): Record<string, string | undefined> {
  return chooseLlvmpipeEnv(env).env;
}

function chooseLlvmpipeEnv(env: Record<string, string | undefined>) {
  const out = { ...env };
  const choice = chooseVectorWidth(out, cpuFlags());
  const dir = widthShaderCacheDir(out, env.HOME ?? env.USERPROFILE);
  if (dir) out.MESA_SHADER_CACHE_DIR = dir;
  return { env: out, choice };
}

/** Decides the width and its shader cache folder, before Dawn loads the driver (Mesa reads both then). */
export function setVectorWidth(env: Record<string, string | undefined>): void {
  const chosen = chooseLlvmpipeEnv(env);
  const shaderCache = chosen.env.MESA_SHADER_CACHE_DIR;
  vectorWidth = shaderCache ? { ...chosen.choice, shaderCache } : chosen.choice;
  for (const name of ['LP_NATIVE_VECTOR_WIDTH', 'MESA_SHADER_CACHE_DIR'] as const) {
    if (chosen.env[name] !== undefined) env[name] = chosen.env[name];
  }
}
