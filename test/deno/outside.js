/**
 * The library imported from a script outside the checkout, as a user's own project would: `deno run
 * --node-modules-dir=manual` (or `"nodeModulesDir": "manual"` in the project's deno.json) makes Deno resolve
 * the compiled files' npm imports (jimp, ...) from the checkout's node_modules, the folders above each file;
 * without it Deno refuses them (`Import "jimp" not a dependency`). scripts/test.sh copies this file to a
 * temporary folder and runs it there with the checkout's path; it embeds texts and checks open_clip's numbers.
 *
 *   deno run --node-modules-dir=manual --allow-read --allow-env outside.js /path/to/whylesion
 */
import process from 'node:process';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const repo = process.argv[2] ?? Deno.args[0];
const checkout = pathToFileURL(`${repo}/`);
if (new URL('.', import.meta.url).href.startsWith(checkout.href))
  throw new Error('outside.js must run from a folder outside the checkout');
const { loadModel, readNpy } = await import(new URL('dist/src/index.js', checkout).href);
const tiny = new URL('test/fixtures/openclip-tiny/', checkout);
const cases = JSON.parse(readFileSync(new URL('cases.json', tiny), 'utf8'));
const expected = readNpy(readFileSync(new URL('expected/text_embeddings.npy', tiny)), 'text_embeddings.npy');
const model = await loadModel(new URL('model', tiny).pathname, {
  vocabPath: new URL('assets/bpe_simple_vocab_16e6.txt.gz', checkout).pathname,
});
const rows = await model.encodeText(cases.texts.slice(0, 2), { normalize: true });
model.dispose();
const dim = expected.shape[1];
let worst = 0;
rows.forEach((row, i) => {
  row.forEach((v, j) => {
    worst = Math.max(worst, Math.abs(v - expected.data[i * dim + j]));
  });
});
if (!(worst <= 1e-5)) {
  console.error(`outside.js: text embeddings differ from open_clip's by ${worst}`);
  process.exit(1);
}
console.log(
  `outside.js: imported ${checkout.pathname}dist/src/index.js from ${new URL('.', import.meta.url).pathname}; 2 text embeddings within ${worst.toExponential(1)} of open_clip`,
);
