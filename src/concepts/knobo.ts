import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bundledAsset } from '../assets.js';
import { UserError } from '../errors.js';

/** KnoBo's skin-lesion concept bottlenecks (200 clinical yes/no questions each), by source corpus. */
export const KNOBO_BOTTLENECKS = ['PubMed', 'StatPearls', 'Textbooks', 'Wikipedia', 'prompt'] as const;
export type KnoboBottleneck = (typeof KNOBO_BOTTLENECKS)[number];
export const DEFAULT_BOTTLENECK: KnoboBottleneck = 'PubMed';
/** Environment variable naming a folder that replaces the package's copy of KnoBo's lists. */
export const KNOBO_DIR_ENV = 'WHYLESION_KNOBO_DIR';

/**
 * A file of KnoBo's skin-lesion data (assets/knobo/README.md): from $WHYLESION_KNOBO_DIR when set, else the
 * copy the package ships.
 */
export async function readKnoboFile(file: string): Promise<string> {
  const local = process.env[KNOBO_DIR_ENV];
  if (!local) return readFile(bundledAsset(`knobo/${file}`), 'utf8');
  return readFile(join(local, file), 'utf8').catch((cause: unknown) => {
    throw new UserError(`${KNOBO_DIR_ENV} is ${local}, which has no ${file}; point it at a copy of KnoBo's data (or unset it to use the lists the package ships).`, { cause });
  });
}

/** Concept questions, one per line: from a file path, or a KnoBo bottleneck name (case-insensitive). */
export async function loadConcepts(spec: string = DEFAULT_BOTTLENECK): Promise<string[]> {
  const name = KNOBO_BOTTLENECKS.find((b) => b.toLowerCase() === spec.toLowerCase());
  const text = name ? await readKnoboFile(`skin_${name}.txt`) : await readFile(spec, 'utf8').catch((cause: unknown) => {
    throw new UserError(`Cannot read the concepts file ${spec}; pass a text file with one concept per line, or one of ${KNOBO_BOTTLENECKS.join(', ')}.`, { cause });
  });
  const concepts = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
  if (concepts.length === 0) throw new UserError(`The concepts file ${spec} has no concepts; write one per line.`);
  return concepts;
}
