import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { UserError } from '../src/errors.js';
import { type ClipTokenizer, cleanText, gunzip } from '../src/tokenizer/index.js';
import { loadTokenizer } from '../src/tokenizer/load.js';

const BPE_GZ = fileURLToPath(new URL('../assets/bpe_simple_vocab_16e6.txt.gz', import.meta.url));
const TINY_DIR = fileURLToPath(new URL('fixtures/openclip-tiny/', import.meta.url));
const SOT = 49406;
const EOT = 49407;

interface OpenClipCases {
  texts: string[];
  tokens: number[][];
}
interface PortCases {
  cases: { text: string; ids: number[] }[];
}
/** Real open_clip 2.24 output for the reference texts. */
const openClip: OpenClipCases = JSON.parse(readFileSync(join(TINY_DIR, 'cases.json'), 'utf8'));
/** make_expected.py (a plain-Python port of SimpleTokenizer): encode() ids of ~300 varied texts. */
const port: PortCases = JSON.parse(readFileSync(new URL('fixtures/tokenizer/expected.json', import.meta.url), 'utf8'));

/** open_clip's row for encode() ids: SOT, ids, EOT, zeros; cut to `ctx` with EOT last. */
function expectedRow(ids: number[], ctx = 77): number[] {
  const row = [SOT, ...ids, EOT].slice(0, ctx);
  row[row.length - 1] = EOT;
  return [...row, ...new Array(ctx - row.length).fill(0)];
}

let tokenizer: ClipTokenizer;
beforeAll(async () => {
  tokenizer = await loadTokenizer({ vocabPath: BPE_GZ });
});

describe('ClipTokenizer against open_clip', () => {
  test('reference texts give exactly open_clip 2.24 tokens', () => {
    expect(tokenizer.tokenizeToArrays(openClip.texts)).toEqual(openClip.tokens);
    const flat = tokenizer.tokenize(openClip.texts);
    expect(flat).toBeInstanceOf(Int32Array);
    expect(Array.from(flat)).toEqual(openClip.tokens.flat());
  });

  test('~300 varied texts match the Python port, including truncated rows', () => {
    for (const { text, ids } of port.cases) {
      expect(tokenizer.encode(text), JSON.stringify(text)).toEqual(ids);
    }
    const rows = tokenizer.tokenizeToArrays(port.cases.map((c) => c.text));
    rows.forEach((row, i) => {
      expect(row, JSON.stringify(port.cases[i]!.text)).toEqual(expectedRow(port.cases[i]!.ids));
    });
    // The fixture must exercise truncation for the comparison above to cover it.
    expect(port.cases.filter((c) => c.ids.length > 75).length).toBeGreaterThan(5);
  });

  test('constants and special tokens', () => {
    expect([tokenizer.sotId, tokenizer.eotId, tokenizer.vocabSize]).toEqual([SOT, EOT, 49408]);
    expect(tokenizer.encode('')).toEqual([]);
    expect(tokenizer.tokenizeToArrays([''])).toEqual([expectedRow([])]);
    // open_clip's split pattern matches its own special-token names inside text.
    expect(tokenizer.encode('x <START_OF_TEXT> y <end_of_text>')).toEqual([
      ...tokenizer.encode('x'),
      SOT,
      ...tokenizer.encode('y'),
      EOT,
    ]);
  });

  test('truncation keeps SOT first and EOT last, at any context length', () => {
    const ids = tokenizer.encode('one two three four five six seven eight nine ten');
    expect(ids.length).toBe(10);
    expect(tokenizer.tokenizeToArrays(['one two three four five six seven eight nine ten'], 6)).toEqual([
      [SOT, ...ids.slice(0, 4), EOT],
    ]);
    expect(tokenizer.tokenizeToArrays(['one two three four five six seven eight nine ten'], 12)).toEqual([
      [SOT, ...ids, EOT],
    ]);
    expect(tokenizer.tokenizeToArrays(['one two three four five six seven eight nine ten'], 11)).toEqual([
      [SOT, ...ids.slice(0, 9), EOT],
    ]);
    expect(() => tokenizer.tokenize(['x'], 1)).toThrow(UserError);
  });

  test('a 1 MB text truncates correctly and fast', () => {
    const phrase = 'irregular pigment network with blue-white veil, ';
    const big = phrase.repeat(Math.ceil(1_000_000 / phrase.length));
    let start = performance.now();
    const [row] = tokenizer.tokenizeToArrays([big]);
    expect(performance.now() - start).toBeLessThan(15_000);
    expect(row).toEqual(expectedRow(tokenizer.encode(phrase.repeat(10))));
    // One megabyte-long word: BPE over all of it must still be quick.
    start = performance.now();
    const [wordRow] = tokenizer.tokenizeToArrays(['a'.repeat(1_000_000)]);
    if (wordRow === undefined) throw new Error('missing wordRow');
    expect(performance.now() - start).toBeLessThan(15_000);
    expect(wordRow[0]).toBe(SOT);
    expect(wordRow[76]).toBe(EOT);
    expect(tokenizer.decode(wordRow.slice(1, 76))).toMatch(/^a{75,}$/);
  });

  test('lone surrogates become U+FFFD instead of failing', () => {
    expect(cleanText('a\ud800b\udc00c')).toBe('a\ufffdb\ufffdc');
    expect(tokenizer.encode('lesion \ud83d')).toEqual(tokenizer.encode('lesion \ufffd'));
    expect(tokenizer.encode('lesion \ufffd').length).toBeGreaterThan(1);
  });

  test('decode inverts encode up to word-end spaces', () => {
    expect(tokenizer.decode(tokenizer.encode('a photo of a cat'))).toBe('a photo of a cat ');
    expect(tokenizer.decode(tokenizer.encode('café 👍 ½'))).toBe('café 👍 ½ ');
    expect(tokenizer.decode([SOT, 320, EOT])).toBe('<start_of_text>a <end_of_text>');
    expect(() => tokenizer.decode([49408])).toThrow(UserError);
  });
});

describe('cleanText (ftfy + html.unescape + whitespace + lowercase)', () => {
  test.each([
    ['NFC normalization', 'Cafe\u0301 A\u030a', 'café å'],
    ['curly quotes', 'It\u2019s \u201cquoted\u201d \u2018x\u2019 \u02bcy', "it's \"quoted\" 'x' 'y"],
    ['Latin ligatures', '\ufb01ne \ufb02ower \ufb03x \u01c4 \u0132', 'fine flower ffix dž ij'],
    ['fullwidth and halfwidth forms', '\uff21\uff22\uff23\uff11\uff12\uff13\uff01\u3000\uff76', 'abc123! カ'],
    ['mojibake: UTF-8 read as Windows-1252', 'cafÃ© Ã¼ber SÃ£o donâ€™t â€œokâ€\u009d', 'café über são don\'t "ok"'],
    ['mojibake twice over', 'cafÃƒÂ©', 'café'],
    ['mojibake beside text that is not Windows-1252', '東京 cafÃ© naÃ¯ve', '東京 café naïve'],
    ['real accented text is left alone', 'naïve résumé Zürich Ærø ½°C', 'naïve résumé zürich ærø ½°c'],
    ['an uppercase letter before a symbol is not mojibake', '«CAFÉ»', '«café»'],
    ['C1 controls read as Windows-1252', 'a\x85b \x93hi\x94 \x80', 'a…b "hi" €'],
    ['control characters removed', 'a\x00b\x07c\x7fd\ufeffe\u206af\x0bg', 'abcdefg'],
    ['terminal escapes removed', '\x1b[31mred\x1b[0m alert', 'red alert'],
    ['whitespace runs and ends', '  a \t\n b\u2003\u00a0c  \r\n', 'a b c'],
    ['lowercase', 'HELLO Σοφία İ', 'hello σοφία i\u0307'],
  ])('%s', (_rule, input, expected) => {
    expect(cleanText(input)).toBe(expected);
  });

  test.each([
    ['basic entities', '&amp; &lt;b&gt; &quot;x&quot; &#39;y&#39; &apos;', "& <b> \"x\" 'y' '"],
    ['numeric references', '&#x263A; &#9731; &#X41;', '☺ ☃ a'],
    ['non-breaking space collapses', 'a&nbsp;b &nbsp; c', 'a b c'],
    ['legacy names without ";"', '&copy 2024 &amp more &eacutee', '© 2024 & more ée'],
    ['longest legacy prefix', '&notit; &notin;', '¬it; ∉'],
    ['unknown names stay', '&bogus; & plain', '&bogus; & plain'],
    [
      'Python remaps invalid references',
      '&#0;|&#128;|&#150;|&#x110000;|&#xD800;|&#1;|&#65535;',
      '\ufffd|€|–|\ufffd|\ufffd||',
    ],
    ['nested escapes unescape fully when the line has no "<"', '&amp;amp;amp;lt;', '<'],
    ['with "<" only html.unescape runs, twice', 'x < &amp;amp;amp;lt;', 'x < &amp;lt;'],
    ['"<" disables ftfy unescaping for later lines too', 'a < b\n&amp;amp;amp;\n', 'a < b &amp;'],
    ['ftfy decodes upper-cased entity names', '&EACUTE;T&EACUTE;', 'été'],
  ])('HTML: %s', (_rule, input, expected) => {
    expect(cleanText(input)).toBe(expected);
  });

  test('cleaning decides the tokens', () => {
    expect(tokenizer.encode('ＩＴ’Ｓ  ﬁne &amp; cafÃ©')).toEqual(tokenizer.encode("it's fine & café"));
  });
});

describe('vocabulary sources', () => {
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'whylesion-tokenizer-'));
    // Convert the gz merges into Hugging Face's vocab.json + merges.txt, as openai/clip-vit-large-patch14 ships them.
    const lines = new TextDecoder()
      .decode(await gunzip(readFileSync(BPE_GZ)))
      .split('\n')
      .slice(1, 48895);
    // bytes_to_unicode in vocabulary order: printable bytes as themselves, then the rest as U+0100...
    const printable: number[] = [];
    for (const [from, to] of [
      [0x21, 0x7e],
      [0xa1, 0xac],
      [0xae, 0xff],
    ] as [number, number][]) {
      for (let b = from; b <= to; b++) printable.push(b);
    }
    const byteChars = printable.map((b) => String.fromCharCode(b));
    for (let b = 0, n = 0; b < 256; b++) if (!printable.includes(b)) byteChars.push(String.fromCharCode(256 + n++));
    const tokens = [
      ...byteChars,
      ...byteChars.map((c) => `${c}</w>`),
      ...lines.map((l) => l.replace(' ', '')),
      '<|startoftext|>',
      '<|endoftext|>',
    ];
    writeFileSync(join(dir, 'vocab.json'), JSON.stringify(Object.fromEntries(tokens.map((t, i) => [t, i]))));
    writeFileSync(join(dir, 'merges.txt'), `#version: 0.2\n${lines.join('\n')}\n`);
    writeFileSync(join(dir, 'broken.txt.gz'), 'not gzip at all');
    writeFileSync(join(dir, 'short.txt'), 'header\na b\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('vocab.json + merges.txt give the same ids as the gz merges', async () => {
    const texts = [...openClip.texts, ...port.cases.map((c) => c.text)];
    const expected = Array.from(tokenizer.tokenize(texts));
    for (const path of [dir, join(dir, 'vocab.json'), join(dir, 'merges.txt')]) {
      const hf = await loadTokenizer({ vocabPath: path });
      expect([hf.sotId, hf.eotId, hf.vocabSize]).toEqual([SOT, EOT, 49408]);
      expect(Array.from(hf.tokenize(texts))).toEqual(expected);
    }
  });

  test('the environment variable names the vocabulary when no path is given, else the bundled one is read', async () => {
    const saved = process.env.WHYLESION_BPE_VOCAB;
    try {
      process.env.WHYLESION_BPE_VOCAB = dir;
      expect((await loadTokenizer()).encode('dark brown')).toEqual([3144, 2866]);
      process.env.WHYLESION_BPE_VOCAB = join(dir, 'absent.txt.gz');
      await expect(loadTokenizer()).rejects.toThrow(
        /absent\.txt\.gz does not exist.*--vocab PATH.*WHYLESION_BPE_VOCAB/,
      );
      await expect(loadTokenizer()).rejects.toBeInstanceOf(UserError);
      delete process.env.WHYLESION_BPE_VOCAB;
      const bundled = await loadTokenizer();
      expect(Array.from(bundled.tokenize(openClip.texts))).toEqual(openClip.tokens.flat());
    } finally {
      if (saved === undefined) delete process.env.WHYLESION_BPE_VOCAB;
      else process.env.WHYLESION_BPE_VOCAB = saved;
    }
  });

  test('missing or corrupt files are user errors naming the path', async () => {
    for (const name of ['nope.txt.gz', 'broken.txt.gz', 'short.txt']) {
      const path = join(dir, name);
      const error = await loadTokenizer({ vocabPath: path }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UserError);
      expect((error as Error).message).toContain(path);
    }
    const emptyDir = mkdtempSync(join(dir, 'empty-'));
    await expect(loadTokenizer({ vocabPath: emptyDir })).rejects.toThrow(join(emptyDir, 'vocab.json'));
  });
});
