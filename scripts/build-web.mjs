/**
 * Builds the browser edition: dist/web/whylesion.js (one ESM bundle of the library, with the CLIP
 * vocabulary, KnoBo's concept lists and mozjpeg's WebAssembly inside) beside a copy of the demo page
 * (examples/web/), so dist/web/ is a static site any server can serve. The Node platform module
 * (src/platform/index.ts) is swapped for src/platform/browser.ts and the loaders (src/api/loaders.ts) for
 * src/api/loaders.browser.ts; nothing of Node reaches the bundle.
 *
 *   node scripts/build-web.mjs      (npm run build:web)
 */
import { cpSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'web');
/** open_clip reads lines[1 : 49152-256-2+1] of the merges file; the rest (213k lines) is never used. */
const CLIP_MERGE_COUNT = 49152 - 256 - 2;

const browserPlatform = {
  name: 'whylesion-browser',
  setup(build) {
    // The two runtime-specific modules: the platform (bottom layer) and the loaders (api layer).
    const browserEditions = {
      [join(root, 'src', 'platform', 'index.js')]: join(root, 'src', 'platform', 'browser.ts'),
      [join(root, 'src', 'api', 'loaders.js')]: join(root, 'src', 'api', 'loaders.browser.ts'),
    };
    build.onResolve({ filter: /(index|loaders)\.js$/ }, (args) => {
      const target = browserEditions[resolve(args.resolveDir, args.path)];
      return target ? { path: target } : undefined;
    });
    build.onResolve({ filter: /^virtual:clip-merges$/ }, () => ({ path: 'clip-merges', namespace: 'whylesion' }));
    build.onLoad({ filter: /^clip-merges$/, namespace: 'whylesion' }, () => {
      const lines = gunzipSync(readFileSync(join(root, 'assets', 'bpe_simple_vocab_16e6.txt.gz')))
        .toString('utf8')
        .split('\n');
      return { contents: lines.slice(0, 1 + CLIP_MERGE_COUNT).join('\n'), loader: 'text' };
    });
    // Nothing of Node may reach the page: fail the build instead of shipping a broken import.
    build.onResolve({ filter: /^(node:|fs$|path$|os$|crypto$|module$|url$|zlib$)/ }, (args) => ({
      errors: [
        { text: `${args.importer} imports ${args.path}, a Node built-in, which the browser bundle cannot hold` },
      ],
    }));
  },
};

export async function buildWeb() {
  mkdirSync(out, { recursive: true });
  const result = await esbuild.build({
    entryPoints: [join(root, 'src', 'web.ts')],
    outfile: join(out, 'whylesion.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    sourcemap: true,
    metafile: true,
    loader: { '.wasm': 'binary', '.txt': 'text' },
    plugins: [browserPlatform],
    logLevel: 'warning',
  });
  cpSync(join(root, 'examples', 'web'), out, { recursive: true });
  return result;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = await buildWeb();
  const bytes = Object.values(result.metafile.outputs).find((o) => o.entryPoint)?.bytes ?? 0;
  console.log(`dist/web/whylesion.js: ${(bytes / 1000).toFixed(0)} kB (minified), page copied from examples/web/`);
}
