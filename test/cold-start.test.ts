import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/api/model.js';
import { UserError } from '../src/errors.js';
import { maxAbsDiff, runCli, TINY, VOCAB_URL } from './helpers.js';

const MODEL = fileURLToPath(new URL('model', TINY));
const VOCAB = fileURLToPath(VOCAB_URL);
const cases = JSON.parse(readFileSync(new URL('cases.json', TINY), 'utf8')) as {
  images: string[];
  texts: string[];
  tokens: number[][];
  label_probs_first3_texts: number[][];
};
const env: NodeJS.ProcessEnv = {
  ...process.env,
  WHYLESION_BPE_VOCAB: VOCAB,
  XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp',
};
delete env.WHYLESION_TRACE;

describe('cold start: phase trace and the tokenizer read during the load', () => {
  it('WHYLESION_TRACE=1 adds one stderr line per phase, in causal order, and changes nothing else', async () => {
    const args = [
      'classify',
      fileURLToPath(new URL(join('images', cases.images[0]!), TINY)),
      '--model',
      MODEL,
      '--json',
      '--no-cache',
      ...cases.texts.slice(0, 3).flatMap((l) => ['--label', l]),
    ];
    const plain = await runCli(args, env);
    const traced = await runCli(args, { ...env, WHYLESION_TRACE: '1' });
    expect([plain.code, traced.code]).toEqual([0, 0]);
    expect(plain.stderr).toBe('');
    expect(traced.stdout).toBe(plain.stdout);
    const [row] = JSON.parse(traced.stdout) as { probs: number[] }[];
    if (row === undefined) throw new Error('missing row');
    expect(maxAbsDiff(row.probs, cases.label_probs_first3_texts[0]!)).toBeLessThanOrEqual(1e-3);

    const lines = traced.stderr.trimEnd().split('\n');
    const marks = lines.map((line) => /^whylesion trace: \+[\d.]+ ms \[t=([\d.]+)\] (.*)$/.exec(line));
    expect(lines.filter((_, i) => !marks[i])).toEqual([]);
    // The child process (the one that loads and runs) prints every phase after its 'cli started (child)'.
    const child = marks
      .slice(marks.findIndex((m) => m![2] === 'cli started (child)'))
      .map((m) => ({ t: Number(m![1]), phase: m![2] ?? '' }));
    const at = (prefix: string): number => {
      const found = child.filter((m) => m.phase.startsWith(prefix));
      expect(found, prefix).toHaveLength(1);
      return found[0]!.t;
    };
    const order = [
      'load start',
      'checkpoint opened',
      'device ready',
      'weights uploaded',
      'plan bound text',
      'forward done text',
      'images preprocessed',
      'plan bound vision',
      'forward done vision',
    ].map(at);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(at('tokenizer loaded')).toBeLessThan(at('forward done text'));
    expect(child.find((m) => m.phase.startsWith('plan bound text'))!.phase).toMatch(
      /\(([1-9]\d*) new pipelines, [\d.]+ s summed compile time, \1 in all\)$/,
    );
  }, 120_000);

  it('a preloaded tokenizer tokenizes as open_clip does; a missing vocabulary is refused on first use, not at load', async () => {
    const model = await loadModel(MODEL, { preloadTokenizer: true, vocabPath: VOCAB });
    try {
      expect(Array.from(await model.tokenize(cases.texts))).toEqual(cases.tokens.flat());
    } finally {
      model.dispose();
    }
    const missing = join(fileURLToPath(new URL('.', TINY)), 'no-such-vocab.txt.gz');
    const unreadable = await loadModel(MODEL, { preloadTokenizer: true, vocabPath: missing });
    try {
      const refusal = await unreadable.tokenize(['a']).catch((e: unknown) => e);
      expect(refusal).toBeInstanceOf(UserError);
      expect((refusal as Error).message).toContain(`${missing} does not exist`);
    } finally {
      unreadable.dispose();
    }
  }, 120_000);
});
