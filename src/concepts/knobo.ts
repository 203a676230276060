import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.js';

/** KnoBo's skin-lesion concept bottlenecks (200 clinical yes/no questions each), by source corpus. */
export const KNOBO_BOTTLENECKS = ['PubMed', 'StatPearls', 'Textbooks', 'Wikipedia', 'prompt'] as const;
export type KnoboBottleneck = (typeof KNOBO_BOTTLENECKS)[number];
export const DEFAULT_BOTTLENECK: KnoboBottleneck = 'PubMed';

// Pinned to one commit of the public KnoBo repository (MIT), so the cached file never changes under a user.
const KNOBO_COMMIT = '7bc3b05ac3811acef574cff4bd1a368fbc692d5c';
const KNOBO_URL = `https://raw.githubusercontent.com/YueYANG1996/KnoBo/${KNOBO_COMMIT}/data/bottlenecks`;

/**
 * Concept questions, one per line: from a file path, or a KnoBo bottleneck name, read from
 * $WHYLESION_KNOBO_DIR when set, else from the whylesion cache, downloaded there once.
 */
export async function loadConcepts(spec: string = DEFAULT_BOTTLENECK, fetchImpl: typeof fetch = fetch): Promise<string[]> {
  const name = KNOBO_BOTTLENECKS.find((b) => b.toLowerCase() === spec.toLowerCase());
  const text = name ? await knoboText(name, fetchImpl) : await readFile(spec, 'utf8').catch((cause: unknown) => {
    throw new UserError(`Cannot read the concepts file ${spec}; pass a text file with one concept per line, or one of ${KNOBO_BOTTLENECKS.join(', ')}.`, { cause });
  });
  const concepts = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
  if (concepts.length === 0) throw new UserError(`The concepts file ${spec} has no concepts; write one per line.`);
  return concepts;
}

async function knoboText(name: KnoboBottleneck, fetchImpl: typeof fetch): Promise<string> {
  const file = `skin_${name}.txt`;
  const local = process.env.WHYLESION_KNOBO_DIR;
  if (local) {
    return readFile(join(local, file), 'utf8').catch((cause: unknown) => {
      throw new UserError(`WHYLESION_KNOBO_DIR is ${local}, which has no ${file}; point it at a copy of KnoBo's data/bottlenecks.`, { cause });
    });
  }
  const cacheDir = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'whylesion', 'knobo', KNOBO_COMMIT);
  const cached = join(cacheDir, file);
  const hit = await readFile(cached, 'utf8').catch(() => undefined);
  if (hit !== undefined) return hit;
  let text: string;
  try {
    const response = await fetchImpl(`${KNOBO_URL}/${file}`);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    text = await response.text();
  } catch (cause) {
    throw new UserError(
      `Could not download the KnoBo concept list ${file} (${(cause as Error).message}); pass --concepts FILE.txt, or set WHYLESION_KNOBO_DIR to a folder holding it.`,
      { cause },
    );
  }
  try {
    await mkdir(cacheDir, { recursive: true });
    const temporary = `${cached}.${process.pid}.tmp`;
    await writeFile(temporary, text);
    await rename(temporary, cached);
  } catch (cause) {
    console.warn(`whylesion: could not cache ${file} in ${cacheDir} (${(cause as NodeJS.ErrnoException).code ?? cause}); it will be downloaded again next time.`);
  }
  return text;
}
