/**
 * Deno's permission refusals, as a user meets them: each one a UserError whose one sentence names the flag
 * to add. Run with read access to dist/, node_modules/ and test/ only (scripts/test.sh), so the bundled
 * vocabulary (assets/) and the example image (examples/) are refused.
 */
import { fileURLToPath } from 'node:url';
import { loadModel, UserError } from '../../dist/src/index.js';
import { check, report } from './report.js';

const path = (relative) => fileURLToPath(new URL(`../../${relative}`, import.meta.url));

async function refusal(work) {
  try {
    await work();
    return undefined;
  } catch (error) {
    return error;
  }
}

function checkRefusal(what, error, flag) {
  const sentence =
    error instanceof UserError && /^Deno did not allow \w+ access/.test(error.message) && error.message.includes(flag);
  check(what, sentence, error ? `${error.name}: ${error.message}` : 'no error');
}

await report(async () => {
  checkRefusal(
    'a model folder outside the allowed paths',
    await refusal(() => loadModel(path('assets/knobo'))),
    `--allow-read=${path('assets/knobo')}`,
  );
  const model = await loadModel(path('test/fixtures/openclip-tiny/model'));
  try {
    checkRefusal(
      'the bundled vocabulary, read when text is first encoded',
      await refusal(() => model.encodeText('dark brown')),
      `--allow-read=${path('assets/bpe_simple_vocab_16e6.txt.gz')}`,
    );
    checkRefusal(
      'an image file',
      await refusal(() => model.encodeImage(path('examples/lesion.png'))),
      `--allow-read=${path('examples/lesion.png')}`,
    );
  } finally {
    model.dispose();
  }
});
