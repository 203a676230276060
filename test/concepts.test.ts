import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KNOBO_BOTTLENECKS, loadConcepts } from '../src/concepts/knobo.js';
import { UserError } from '../src/errors.js';

const KNOBO = new URL('../assets/knobo/', import.meta.url);
const saved = process.env.WHYLESION_KNOBO_DIR;
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'whylesion-knobo-'));
  delete process.env.WHYLESION_KNOBO_DIR;
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  if (saved === undefined) delete process.env.WHYLESION_KNOBO_DIR;
  else process.env.WHYLESION_KNOBO_DIR = saved;
});

describe('KnoBo concept lists', () => {
  it('reads every bottleneck the package ships, by case-insensitive name, with no network', async () => {
    for (const name of KNOBO_BOTTLENECKS) {
      const lines = readFileSync(new URL(`skin_${name}.txt`, KNOBO), 'utf8')
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean);
      const concepts = await loadConcepts(name.toUpperCase());
      expect(concepts).toEqual(lines);
      expect(concepts).toHaveLength(200);
    }
  });

  it('reads WHYLESION_KNOBO_DIR instead when set, and says what to do when it lacks the list', async () => {
    writeFileSync(join(dir, 'skin_PubMed.txt'), 'Is it mine?\n');
    process.env.WHYLESION_KNOBO_DIR = dir;
    expect(await loadConcepts('pubmed')).toEqual(['Is it mine?']);
    await expect(loadConcepts('prompt')).rejects.toThrow(UserError);
    await expect(loadConcepts('prompt')).rejects.toThrow(/WHYLESION_KNOBO_DIR is .*, which has no skin_prompt\.txt/);
  });

  it('reads a plain file of concepts, one per line, and refuses an empty one', async () => {
    const file = join(dir, 'mine.txt');
    writeFileSync(file, 'Is it blue?\n\n  Is it raised?  \r\n');
    expect(await loadConcepts(file)).toEqual(['Is it blue?', 'Is it raised?']);
    writeFileSync(file, '\n \n');
    await expect(loadConcepts(file)).rejects.toThrow(/has no concepts/);
    await expect(loadConcepts(join(dir, 'absent.txt'))).rejects.toThrow(/Cannot read the concepts file/);
  });
});
