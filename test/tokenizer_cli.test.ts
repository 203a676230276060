import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, test, vi } from 'vitest';
import { tokenizeCommand } from '../src/cli/tokenize.js';
import { UserError } from '../src/errors.js';

const BPE_GZ = fileURLToPath(new URL('../assets/bpe_simple_vocab_16e6.txt.gz', import.meta.url));
const TINY_DIR = fileURLToPath(new URL('fixtures/openclip-tiny/', import.meta.url));
const cases: { texts: string[]; tokens: number[][] } = JSON.parse(readFileSync(join(TINY_DIR, 'cases.json'), 'utf8'));

/** Runs the command and returns what it wrote to stdout. */
async function run(argv: string[]): Promise<string> {
  const chunks: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    chunks.push(String(chunk));
    return true;
  });
  await tokenizeCommand(argv);
  return chunks.join('');
}
afterEach(() => vi.restoreAllMocks());

test('--json prints open_clip token rows for every text', async () => {
  const out = await run(['--vocab', BPE_GZ, '--json', '--', ...cases.texts]);
  expect(JSON.parse(out)).toEqual(cases.tokens);
});

test('plain output prints one line of ids per text, at the chosen context length', async () => {
  const out = await run(['--vocab', BPE_GZ, '--context-length', '5', 'dark brown', 'a dermoscopic image of melanoma']);
  expect(out).toBe('49406 3144 2866 49407 0\n49406 320 839 9840 49407\n');
});

test('--help prints usage; bad arguments are user errors', async () => {
  expect(await run(['--help'])).toMatch(/^Usage: whylesion tokenize/);
  await expect(run(['--vocab', BPE_GZ])).rejects.toThrow(UserError);
  await expect(run(['--vocab', BPE_GZ, '--context-length', 'x', 'a'])).rejects.toThrow(/--context-length x/);
  await expect(run(['--bogus', 'a'])).rejects.toThrow(UserError);
});
