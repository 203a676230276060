import { UserError } from '../errors.js';
import { loadTokenizer, VOCAB_ENV } from '../tokenizer/load.js';
import { parseCommand, positiveInteger } from './args.js';

const USAGE = `Usage: whylesion tokenize [--context-length N] [--vocab PATH] [--json] [--] TEXT...

Prints open_clip's token ids for each TEXT: SOT, the text's tokens, EOT, zero padding to the context length.

Options:
  --context-length N  ids per text (default 77); longer texts are cut, keeping EOT last
  --vocab PATH        bpe_simple_vocab_16e6.txt.gz, or a folder with vocab.json and merges.txt
                      (default: $${VOCAB_ENV})
  --json              print one JSON array of id arrays instead of one line of ids per text
  -h, --help          show this help
`;

/** `whylesion tokenize`: token ids of each text, as JSON ([[ids...], ...]) or one space-separated line per text. */
export async function tokenizeCommand(argv: string[]): Promise<void> {
  const parsed = parseCommand(
    'tokenize',
    argv,
    { 'context-length': { type: 'string' }, vocab: { type: 'string' }, json: { type: 'boolean' } },
    USAGE,
  );
  if (!parsed) return;
  const { values, positionals: texts } = parsed;
  if (texts.length === 0) {
    throw new UserError(
      'whylesion tokenize needs at least one TEXT to tokenize; run "whylesion tokenize --help" for usage.',
    );
  }
  const contextLength =
    values['context-length'] === undefined
      ? 77
      : positiveInteger('context-length', values['context-length'], 2, 1_000_000);
  const tokenizer = await loadTokenizer({ vocabPath: values.vocab });
  const rows = tokenizer.tokenizeToArrays(texts, contextLength);
  const output = values.json ? JSON.stringify(rows) : rows.map((row) => row.join(' ')).join('\n');
  process.stdout.write(`${output}\n`);
}
