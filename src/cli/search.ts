import { UserError } from '../errors.js';
import { readEmbeddingMeta } from '../io/embedding-reader.js';
import { describeIdentity, identityKey } from '../io/identity.js';
import { searchEmbeddings } from '../search/search.js';
import { MODEL_OPTIONS, MODEL_USAGE, parseCommand, positiveInteger } from './args.js';
import { checkReadable, loadModelFromArgs } from './load.js';

const USAGE = `
Usage: whylesion search INDEX (--text S | --image F) [--top K] [--json]

The K rows of INDEX (an embeddings output of whylesion embed or merge: .npy, .jsonl or .parquet with its
INDEX.meta.json) most similar to the query by cosine, exact (every row is compared; the index streams through in
16 MB chunks, so memory stays bounded). The query is embedded with --model, which must be the model that embedded
the index. Equal similarities are listed in row order.
  --text S      a text query
  --image F     an image query
  --top K       rows to list (default 10)
  --json        print {"index", "query", "hits": [{"rank", "row", "file", "index", "score"}]}
${MODEL_USAGE}`;

export async function searchCommand(argv: string[]): Promise<void> {
  const parsed = parseCommand(
    'search',
    argv,
    {
      ...MODEL_OPTIONS,
      text: { type: 'string' },
      image: { type: 'string' },
      top: { type: 'string' },
      json: { type: 'boolean' },
    },
    USAGE,
  );
  if (!parsed) return;
  const { values, positionals } = parsed;
  const [indexPath] = positionals;
  if (positionals.length !== 1 || indexPath === undefined)
    throw new UserError(
      `search takes one INDEX (an embeddings .npy, .jsonl or .parquet), got ${positionals.length}; see whylesion search --help.`,
    );
  if ((values.text === undefined) === (values.image === undefined))
    throw new UserError('search needs exactly one of --text S or --image F; see whylesion search --help.');
  const top = values.top === undefined ? 10 : positiveInteger('top', values.top, 1, 1_000_000);
  // Fail on a bad index before the (slow) model load.
  const meta = await readEmbeddingMeta(indexPath);
  if (values.image !== undefined) await checkReadable([values.image], 'image');
  const model = await loadModelFromArgs(values);
  const identity = model.identity;
  let query: Float32Array;
  try {
    if (identityKey(identity) !== identityKey(meta.model)) {
      throw new UserError(
        `${indexPath} was embedded by another model (${describeIdentity(meta.model)}) than --model's (${describeIdentity(identity)}); search it with the model that embedded it.`,
      );
    }
    const [embedded] =
      values.text !== undefined ? await model.encodeText([values.text]) : await model.encodeImage([values.image!]);
    if (!embedded) throw new Error('Bug: the model returned no embedding for the query.');
    query = embedded;
  } finally {
    model.dispose();
  }
  const { hits } = await searchEmbeddings(indexPath, query, { top, model: identity });
  if (values.json) {
    console.log(
      JSON.stringify({
        index: indexPath,
        query: values.text !== undefined ? { text: values.text } : { image: values.image },
        hits,
      }),
    );
    return;
  }
  for (const hit of hits) console.log(`${hit.rank}\t${hit.score.toFixed(6)}\t${hit.file}`);
}
