import { UserError } from '../errors.js';
import { platform } from '../platform/index.js';

/** KnoBo's skin-lesion concept bottlenecks (200 clinical yes/no questions each), by source corpus. */
export const KNOBO_BOTTLENECKS = ['PubMed', 'StatPearls', 'Textbooks', 'Wikipedia', 'prompt'] as const;
export type KnoboBottleneck = (typeof KNOBO_BOTTLENECKS)[number];
export const DEFAULT_BOTTLENECK: KnoboBottleneck = 'PubMed';
/** Environment variable naming a folder that replaces the package's copy of KnoBo's lists (Node, Deno). */
export { KNOBO_DIR_ENV } from '../platform/types.js';
/**
 * A file of KnoBo's skin-lesion data (assets/knobo/README.md): on Node from $WHYLESION_KNOBO_DIR when set,
 * else the copy the package ships (bundled in the browser build).
 */
export const readKnoboFile = (file: string): Promise<string> => platform.readKnoboFile(file);

/** Concept questions, one per line: from a file path, or a KnoBo bottleneck name (case-insensitive). */
export async function loadConcepts(spec: string = DEFAULT_BOTTLENECK): Promise<string[]> {
  const name = KNOBO_BOTTLENECKS.find((b) => b.toLowerCase() === spec.toLowerCase());
  const text = name
    ? await readKnoboFile(`skin_${name}.txt`)
    : await platform.readText(spec, 'the concepts file').catch((cause: unknown) => {
        throw new UserError(
          `Cannot read the concepts file ${spec}; pass a text file with one concept per line, or one of ${KNOBO_BOTTLENECKS.join(', ')}.`,
          { cause },
        );
      });
  const concepts = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  if (concepts.length === 0) throw new UserError(`The concepts file ${spec} has no concepts; write one per line.`);
  return concepts;
}
