import { existsSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.js';
import { CONFIG_FILE, SAFETENSORS_FILE } from '../io/remote.js';
import { serveStatic, type Mounts } from '../serve/static.js';
import { parseCommand, positiveInteger } from './args.js';

const USAGE = `
Usage: whylesion serve-demo [--port 8080] [--host 127.0.0.1] [--model DIR]

Serves the browser demo (dist/web/: the page and whylesion.js; build it with npm run build:web) until
interrupted. With --model, the folder's open_clip_config.json and open_clip_model.safetensors (nothing else
in it) are served at /model/ and the printed address loads them. Images dropped on the page never leave
the browser. Only this machine can connect unless --host names a non-loopback address (then anyone on the
network can fetch the page and the model; a warning says so). No CORS headers are sent.`;

/** dist/web beside this module once built (dist/src/cli/ -> dist/web). */
const WEB_DIR = fileURLToPath(new URL('../../web/', import.meta.url));

export async function serveDemoCommand(argv: string[]): Promise<void> {
  const parsed = parseCommand(
    'serve-demo',
    argv,
    { port: { type: 'string' }, host: { type: 'string' }, model: { type: 'string' } },
    USAGE,
  );
  if (!parsed) return;
  const { values } = parsed;
  const port = values.port === undefined ? 8080 : positiveInteger('port', values.port, 0, 65535);
  if (!existsSync(`${WEB_DIR}whylesion.js`))
    throw new UserError(`The browser build is missing (${WEB_DIR}whylesion.js); run npm run build:web first.`);
  const mounts: Mounts = { '/': WEB_DIR };
  if (values.model !== undefined) {
    const dir = resolve(values.model);
    if (!existsSync(dir) || !statSync(dir).isDirectory() || !existsSync(resolve(dir, 'open_clip_model.safetensors'))) {
      throw new UserError(
        `--model ${values.model} is not a folder holding open_clip_model.safetensors; the browser reads safetensors only (convert a .bin with whylesion convert).`,
      );
    }
    // A Hugging Face cache snapshot's files are links into the repository's blobs/ folder.
    const realRoots = basename(dirname(dir)) === 'snapshots' ? [resolve(dir, '..', '..', 'blobs')] : [];
    mounts['/model/'] = { dir, files: [CONFIG_FILE, SAFETENSORS_FILE], realRoots };
  }
  const host = values.host ?? '127.0.0.1';
  if (!isLoopback(host)) {
    process.stderr.write(
      `whylesion: warning: listening on ${host}, which is not a loopback address: the demo page${values.model !== undefined ? ` and the model (${values.model})` : ''} ` +
        'are reachable by anyone who can reach this machine on the network; leave out --host to serve this machine only.\n',
    );
  }
  const server = await serveStatic(mounts, { host, port }).catch((cause: NodeJS.ErrnoException) => {
    throw new UserError(`Cannot listen on ${host}:${port} (${cause.code ?? cause.message}); pick another --port.`, {
      cause,
    });
  });
  console.log(
    `Serving the WhyLesionCLIP demo at ${server.url}${values.model !== undefined ? '?model=/model/' : ''} (Ctrl-C to stop)`,
  );
  await new Promise<void>((done) => {
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  await server.close();
}

/** 127.0.0.0/8, ::1 (also as ::ffff:127.x) and the name localhost; anything else may face a network. */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (bare === 'localhost') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  if (isIP(bare) === 6)
    return bare === '::1' || /^(0{0,4}:){5}0{0,4}:?ffff:127\./.test(bare) || bare.startsWith('::ffff:127.');
  return false;
}
