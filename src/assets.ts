import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Files the package ships in its `assets/` folder (the CLIP vocabulary, KnoBo's lists), so nothing needs a
 * download. This module sits at `src/assets.ts` in a checkout and `dist/src/assets.js` once built, hence two
 * candidate depths.
 */
export function bundledAsset(relativePath: string): string {
  return packageFile(`assets/${relativePath}`);
}

/** A file the package ships, by its path in the package (`examples/classes/HAM10000.json`, `reference/clip_reference.py`). */
export function packageFile(relativePath: string): string {
  for (const up of ['../', '../../']) {
    const path = fileURLToPath(new URL(`${up}${relativePath}`, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new Error(`The package's ${relativePath} is missing; reinstall whylesion.`);
}

/** The package's version, from its package.json (two levels up in a checkout, three once built). */
export function packageVersion(): string {
  for (const up of ['../', '../../']) {
    const path = fileURLToPath(new URL(`${up}package.json`, import.meta.url));
    if (existsSync(path)) return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
  }
  throw new Error('The package.json of whylesion is missing; reinstall whylesion.');
}

/** The CLIP BPE vocabulary that open_clip ships (bpe_simple_vocab_16e6.txt.gz). */
export const bundledVocabulary = (): string => bundledAsset('bpe_simple_vocab_16e6.txt.gz');
