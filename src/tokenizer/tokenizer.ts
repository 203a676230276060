import { UserError } from '../errors.js';
import { cleanText, WHITE_SPACE_CLASS } from './clean.js';

/** open_clip's special tokens; its split pattern matches them inside text too. */
const SOT_TEXT = '<start_of_text>';
const EOT_TEXT = '<end_of_text>';
/** The names Hugging Face's CLIP vocab.json uses for the same two ids. */
const HF_SOT_TEXT = '<|startoftext|>';
const HF_EOT_TEXT = '<|endoftext|>';
/** open_clip keeps merges lines[1 : 49152-256-2+1] of bpe_simple_vocab_16e6.txt. */
export const CLIP_MERGE_COUNT = 49152 - 256 - 2;
const WORD_END = '</w>';

// open_clip's pattern, with re.IGNORECASE; `\s` is the regex module's (Unicode White_Space).
const WORD_RE = new RegExp(
  `${SOT_TEXT}|${EOT_TEXT}|'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|[^${WHITE_SPACE_CLASS}\\p{L}\\p{N}]+`,
  'giu',
);

/** GPT-2's byte -> printable character table (bytes_to_unicode). */
function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const table: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCharCode(printable.includes(b) ? b : 256 + extra++);
  return table;
}
const BYTE_TO_CHAR = bytesToUnicode();
/** Python's dict order: the printable bytes first, then the others, which is the vocabulary's order. */
const BYTE_CHARS_IN_VOCAB_ORDER = [...BYTE_TO_CHAR].sort((a, b) => a.charCodeAt(0) - b.charCodeAt(0));
const CHAR_TO_BYTE = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));
const UTF8 = new TextEncoder();
const UTF8_LENIENT = new TextDecoder('utf-8');

/** Splits merges lines ("a b") into pairs; `firstLine` is the 1-based line number in the source. */
function parseMerges(lines: string[], firstLine: number): [string, string][] {
  return lines.map((line, i) => {
    const [left, right, ...more] = line.split(/\s+/).filter((p) => p !== '');
    if (left === undefined || right === undefined || more.length > 0) {
      throw new UserError(
        `The BPE merges line ${firstLine + i} is "${line.slice(0, 40)}", not two symbols; use an unmodified CLIP merges file.`,
      );
    }
    return [left, right];
  });
}

/** Candidate merges packed as rank * 2^21 + position: exact in a double for ranks < 2^32, positions < 2^21. */
const POSITION_SPAN = 2 ** 21;

/** A binary min-heap of numbers, so candidates pop by rank, then leftmost position. */
class MinHeap {
  private readonly items: number[] = [];
  get size(): number {
    return this.items.length;
  }
  push(value: number): void {
    const items = this.items;
    let i = items.length;
    items.push(value);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent]! <= value) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = value;
  }
  pop(): number {
    const items = this.items;
    const top = items[0];
    if (top === undefined) throw new Error('Bug: pop from an empty heap.');
    const last = items.pop()!;
    const n = items.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        let child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && items[child + 1]! < items[child]!) child++;
        if (items[child]! >= last) break;
        items[i] = items[child]!;
        i = child;
      }
      items[i] = last;
    }
    return top;
  }
}

/** CLIP's byte-level BPE tokenizer, giving the same ids as open_clip's SimpleTokenizer. */
export class ClipTokenizer {
  readonly sotId: number;
  readonly eotId: number;
  readonly vocabSize: number;
  private readonly encoder: ReadonlyMap<string, number>;
  private readonly decoder: ReadonlyMap<number, string>;
  /** Merge rank by "first second" (byte characters never include a space). */
  private readonly ranks: ReadonlyMap<string, number>;
  /** Ids per byte-encoded word, like SimpleTokenizer.cache. */
  private readonly cache = new Map<string, readonly number[]>();

  private constructor(encoder: Map<string, number>, merges: [string, string][], sotId: number, eotId: number) {
    this.encoder = encoder;
    this.decoder = new Map([...encoder].map(([token, id]) => [id, token]));
    this.ranks = new Map(merges.map(([a, b], rank) => [`${a} ${b}`, rank]));
    this.sotId = sotId;
    this.eotId = eotId;
    this.vocabSize = encoder.size;
    // Every symbol BPE can produce must have an id, so encode() never meets an unknown token.
    const needed = [...BYTE_TO_CHAR, ...BYTE_TO_CHAR.map((c) => c + WORD_END), ...merges.map(([a, b]) => a + b)];
    const missing = needed.find((token) => !encoder.has(token));
    if (missing !== undefined) {
      throw new UserError(
        `The CLIP vocabulary has no id for the token "${missing}"; use the vocab.json that belongs to these merges.`,
      );
    }
  }

  /** From the text of bpe_simple_vocab_16e6.txt (a header line, then "a b" merges), as open_clip builds it. */
  static fromBpeMerges(mergesText: string): ClipTokenizer {
    const lines = mergesText.split('\n').slice(1, 1 + CLIP_MERGE_COUNT);
    if (lines.length < CLIP_MERGE_COUNT) {
      throw new UserError(
        `The BPE merges text has ${lines.length} merges after its header, not ${CLIP_MERGE_COUNT}; use the complete bpe_simple_vocab_16e6.txt.gz.`,
      );
    }
    const merges = parseMerges(lines, 2);
    const vocab = [
      ...BYTE_CHARS_IN_VOCAB_ORDER,
      ...BYTE_CHARS_IN_VOCAB_ORDER.map((c) => c + WORD_END),
      ...merges.map(([a, b]) => a + b),
      SOT_TEXT,
      EOT_TEXT,
    ];
    const encoder = new Map(vocab.map((token, id) => [token, id]));
    return new ClipTokenizer(encoder, merges, encoder.get(SOT_TEXT)!, encoder.get(EOT_TEXT)!);
  }

  /** From Hugging Face's vocab.json (token -> id) and merges.txt ("#version" header, then "a b" lines). */
  static fromVocabJson(vocab: Record<string, number>, mergesText: string): ClipTokenizer {
    const lines = mergesText.split('\n');
    const header = lines[0]?.startsWith('#') ? 1 : 0;
    const body = lines.slice(header);
    while (body.length > 0 && body[body.length - 1]!.trim() === '') body.pop();
    const merges = parseMerges(body, header + 1);
    const encoder = new Map<string, number>();
    for (const [token, id] of Object.entries(vocab)) {
      if (!Number.isInteger(id) || id < 0) {
        throw new UserError(
          `The CLIP vocab.json maps "${token}" to ${JSON.stringify(id)}, not a token id; use an unmodified vocab.json.`,
        );
      }
      encoder.set(token, id);
    }
    const sotId = encoder.get(HF_SOT_TEXT) ?? encoder.get(SOT_TEXT);
    const eotId = encoder.get(HF_EOT_TEXT) ?? encoder.get(EOT_TEXT);
    if (sotId === undefined || eotId === undefined) {
      throw new UserError(
        `The CLIP vocab.json has no "${HF_SOT_TEXT}"/"${HF_EOT_TEXT}" tokens; use the vocab.json of a CLIP tokenizer.`,
      );
    }
    return new ClipTokenizer(encoder, merges, sotId, eotId);
  }

  /** Token ids of `text` after open_clip's cleaning, without SOT/EOT. */
  encode(text: string): number[] {
    return this.encodeUpTo(text, Infinity);
  }

  /** Text of `ids`: bytes back to UTF-8 (invalid sequences become U+FFFD), word ends to spaces. */
  decode(ids: number[]): string {
    const bytes: number[] = [];
    for (const id of ids) {
      const token = this.decoder.get(id);
      if (token === undefined) {
        throw new UserError(
          `Token id ${id} is not in the CLIP vocabulary (${this.vocabSize} tokens); pass ids the tokenizer produced.`,
        );
      }
      for (const char of token) bytes.push(CHAR_TO_BYTE.get(char)!);
    }
    return UTF8_LENIENT.decode(new Uint8Array(bytes)).replaceAll(WORD_END, ' ');
  }

  /**
   * open_clip's tokenize: per text [SOT, ids..., EOT] zero-padded to `contextLength`; longer texts
   * are cut to `contextLength` with EOT in the last slot. Row-major [texts.length * contextLength].
   */
  tokenize(texts: string[], contextLength = 77): Int32Array {
    if (!Number.isInteger(contextLength) || contextLength < 2) {
      throw new UserError(
        `The context length ${contextLength} is too small; use a whole number of at least 2 (CLIP uses 77).`,
      );
    }
    const out = new Int32Array(texts.length * contextLength);
    texts.forEach((text, row) => {
      // Only the ids that fit are needed, which keeps huge inputs cheap.
      const ids = this.encodeUpTo(text, contextLength - 2).slice(0, contextLength - 2);
      const offset = row * contextLength;
      out[offset] = this.sotId;
      out.set(ids, offset + 1);
      out[offset + 1 + ids.length] = this.eotId;
    });
    return out;
  }

  /** tokenize() as one plain array of `contextLength` ids per text. */
  tokenizeToArrays(texts: string[], contextLength = 77): number[][] {
    const flat = this.tokenize(texts, contextLength);
    return texts.map((_, row) => Array.from(flat.subarray(row * contextLength, (row + 1) * contextLength)));
  }

  /** Encodes word by word and stops once at least `limit` ids are known. */
  private encodeUpTo(text: string, limit: number): number[] {
    const ids: number[] = [];
    for (const [word] of cleanText(text).matchAll(WORD_RE)) {
      if (ids.length >= limit) break;
      if (word === SOT_TEXT) ids.push(this.sotId);
      else if (word === EOT_TEXT) ids.push(this.eotId);
      else {
        let byteChars = '';
        for (const byte of UTF8.encode(word)) byteChars += BYTE_TO_CHAR[byte];
        for (const id of this.bpe(byteChars)) ids.push(id); // no spread: a huge word would overflow the stack
      }
    }
    return ids;
  }

  /**
   * SimpleTokenizer.bpe: repeatedly merge the lowest-ranked adjacent pair, leftmost first. A heap of
   * candidate pairs gives the same merges as open_clip's rescan (a merge only creates pairs of later
   * rank) in O(n log n), so a megabyte-long word stays fast.
   */
  private bpe(word: string): readonly number[] {
    const cached = this.cache.get(word);
    if (cached !== undefined) return cached;
    const symbols = word.split('');
    symbols[symbols.length - 1] += WORD_END;
    const n = symbols.length;
    if (n >= POSITION_SPAN) {
      throw new UserError(`A single word of ${n} bytes is too long to tokenize; split the text with spaces.`);
    }
    const next = new Int32Array(n).map((_, i) => (i + 1 < n ? i + 1 : -1));
    const prev = new Int32Array(n).map((_, i) => i - 1);
    const queue = new MinHeap();
    const consider = (left: number): void => {
      const rank = this.ranks.get(`${symbols[left]} ${symbols[next[left]!]}`);
      if (rank !== undefined) queue.push(rank * POSITION_SPAN + left);
    };
    for (let i = 0; i + 1 < n; i++) consider(i);
    while (queue.size > 0) {
      const candidate = queue.pop();
      const left = candidate % POSITION_SPAN;
      const right = next[left]!;
      // A candidate is stale once either symbol changed: then the pair there has another rank (or none).
      // Merged-away positions get next = -2, so they never pass.
      if (right < 0 || this.ranks.get(`${symbols[left]} ${symbols[right]}`) !== (candidate - left) / POSITION_SPAN)
        continue;
      symbols[left]! += symbols[right]!;
      next[left] = next[right]!;
      next[right] = -2;
      if (next[left] !== -1) prev[next[left]!] = left;
      if (prev[left] !== -1) consider(prev[left]!);
      if (next[left] !== -1) consider(left);
    }
    const ids: number[] = [];
    for (let i = 0; i !== -1; i = next[i]!) ids.push(this.encoder.get(symbols[i]!)!);
    this.cache.set(word, ids);
    return ids;
  }
}
