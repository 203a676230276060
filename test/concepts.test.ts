import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConcepts } from '../src/concepts/knobo.js';
import { UserError } from '../src/errors.js';

const KNOBO = fileURLToPath(new URL('../../shared/knobo/', import.meta.url));
const saved = { cache: process.env.XDG_CACHE_HOME, dir: process.env.WHYLESION_KNOBO_DIR };
let cache: string;
beforeEach(() => {
  cache = mkdtempSync(join(tmpdir(), 'whylesion-knobo-'));
  process.env.XDG_CACHE_HOME = cache;
  delete process.env.WHYLESION_KNOBO_DIR;
});
afterEach(() => {
  rmSync(cache, { recursive: true, force: true });
  for (const [key, value] of [['XDG_CACHE_HOME', saved.cache], ['WHYLESION_KNOBO_DIR', saved.dir]] as const) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
});

describe('KnoBo concept lists', () => {
  const pubmed = readFileSync(join(KNOBO, 'skin_PubMed.txt'), 'utf8');
  const served = (urls: string[]): typeof fetch => (async (url: string | URL | Request) => {
    urls.push(String(url));
    return new Response(pubmed, { status: 200 });
  }) as typeof fetch;

  it('downloads a bottleneck once from the pinned KnoBo commit, then reads the cache', async () => {
    const urls: string[] = [];
    const concepts = await loadConcepts('pubmed', served(urls));
    expect(concepts).toHaveLength(200);
    expect(concepts[0]).toBe(pubmed.split('\n')[0]);
    expect(urls).toEqual([expect.stringMatching(/\/YueYANG1996\/KnoBo\/[0-9a-f]{40}\/data\/bottlenecks\/skin_PubMed\.txt$/)]);
    const offline = (async () => { throw new TypeError('fetch failed'); }) as typeof fetch;
    expect(await loadConcepts('PubMed', offline)).toEqual(concepts);
  });

  it('says what to do when the list can be neither downloaded nor found', async () => {
    const failing = (async () => new Response('nope', { status: 404 })) as typeof fetch;
    await expect(loadConcepts('Wikipedia', failing)).rejects.toThrow(UserError);
    await expect(loadConcepts('Wikipedia', failing)).rejects.toThrow(/skin_Wikipedia\.txt \(HTTP 404\); pass --concepts FILE\.txt, or set WHYLESION_KNOBO_DIR/);
    process.env.WHYLESION_KNOBO_DIR = cache;
    await expect(loadConcepts('prompt')).rejects.toThrow(/has no skin_prompt\.txt/);
  });

  it('reads a plain file of concepts, one per line, and refuses an empty one', async () => {
    const file = join(cache, 'mine.txt');
    writeFileSync(file, 'Is it blue?\n\n  Is it raised?  \r\n');
    expect(await loadConcepts(file)).toEqual(['Is it blue?', 'Is it raised?']);
    writeFileSync(file, '\n \n');
    await expect(loadConcepts(file)).rejects.toThrow(/has no concepts/);
    await expect(loadConcepts(join(cache, 'absent.txt'))).rejects.toThrow(/Cannot read the concepts file/);
  });
});
