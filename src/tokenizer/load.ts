import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import { gunzip } from './gunzip.js';
import { ClipTokenizer } from './tokenizer.js';
import { bundledVocabulary } from '../assets.js';

/** Environment variable naming the vocabulary when no path is passed. */
export const VOCAB_ENV = 'WHYLESION_BPE_VOCAB';
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The CLIP tokenizer from `vocabPath` (or $WHYLESION_BPE_VOCAB): a bpe_simple_vocab_16e6.txt(.gz) merges
 * file, or Hugging Face's vocab.json + merges.txt (the folder holding them, or either file); by default the
 * vocabulary the package ships, as open_clip does.
 */
export async function loadTokenizer(opts: { vocabPath?: string } = {}): Promise<ClipTokenizer> {
  const path = opts.vocabPath || process.env[VOCAB_ENV] || bundledVocabulary();
  const info = await stat(path).catch((cause: unknown) => {
    throw new UserError(
      `The CLIP vocabulary ${path} does not exist; pass an existing file or folder with --vocab PATH or ${VOCAB_ENV}.`,
      { cause },
    );
  });
  const name = basename(path);
  if (info.isDirectory()) return fromHuggingFacePair(join(path, 'vocab.json'), join(path, 'merges.txt'));
  if (name === 'vocab.json' || name === 'merges.txt') {
    return fromHuggingFacePair(join(dirname(path), 'vocab.json'), join(dirname(path), 'merges.txt'));
  }
  const bytes = await readBytes(path);
  const text = decodeUtf8(
    path.endsWith('.gz') ? await gunzip(bytes).catch(corrupt(path, 'is not a valid gzip file')) : bytes,
    path,
  );
  return describeFailures(path, () => ClipTokenizer.fromBpeMerges(text));
}

async function fromHuggingFacePair(vocabPath: string, mergesPath: string): Promise<ClipTokenizer> {
  // One after the other, so a folder missing both names vocab.json every time (Promise.all rejects with whichever read fails first).
  const vocabBytes = await readBytes(vocabPath);
  const mergesBytes = await readBytes(mergesPath);
  let vocab: unknown;
  try {
    vocab = JSON.parse(decodeUtf8(vocabBytes, vocabPath));
  } catch (cause) {
    if (cause instanceof UserError) throw cause;
    throw new UserError(
      `The CLIP vocabulary ${vocabPath} is not valid JSON; use the tokenizer's original vocab.json.`,
      { cause },
    );
  }
  if (typeof vocab !== 'object' || vocab === null || Array.isArray(vocab)) {
    throw new UserError(
      `The CLIP vocabulary ${vocabPath} is not a JSON object of token ids; use the tokenizer's original vocab.json.`,
    );
  }
  const merges = decodeUtf8(mergesBytes, mergesPath);
  return describeFailures(vocabPath, () => ClipTokenizer.fromVocabJson(vocab as Record<string, number>, merges));
}

async function readBytes(path: string): Promise<Uint8Array> {
  return readFile(path).catch(corrupt(path, 'cannot be read'));
}

function decodeUtf8(bytes: Uint8Array, path: string): string {
  try {
    return STRICT_UTF8.decode(bytes);
  } catch (cause) {
    throw new UserError(`The CLIP vocabulary ${path} is not UTF-8 text; use the original, unmodified file.`, { cause });
  }
}

function corrupt(path: string, problem: string): (cause: unknown) => never {
  return (cause) => {
    throw new UserError(`The CLIP vocabulary ${path} ${problem}; check the path, or download the file again.`, {
      cause,
    });
  };
}

/** Names the file in errors that the pure parser reports without knowing where the text came from. */
function describeFailures(path: string, build: () => ClipTokenizer): ClipTokenizer {
  try {
    return build();
  } catch (cause) {
    if (!(cause instanceof UserError)) throw cause;
    throw new UserError(
      `The CLIP vocabulary ${path} is unusable: ${cause.message[0]!.toLowerCase()}${cause.message.slice(1)}`,
      { cause },
    );
  }
}
