import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.js';
import { serveStatic, type Mounts } from '../serve/static.js';
import { parseCommand, positiveInteger } from './args.js';

const USAGE = `
Usage: whylesion serve-demo [--port 8080] [--host 127.0.0.1] [--model DIR]

Serves the browser demo (dist/web/: the page and whylesion.js; build it with npm run build:web) until
interrupted. With --model, the folder (open_clip_config.json + open_clip_model.safetensors) is served at
/model/ and the printed address loads it. Images dropped on the page never leave the browser.`;

/** dist/web beside this module once built (dist/src/cli/ -> dist/web). */
const WEB_DIR = fileURLToPath(new URL('../../web/', import.meta.url));

export async function serveDemoCommand(argv: string[]): Promise<void> {
  const parsed = parseCommand('serve-demo', argv, { port: { type: 'string' }, host: { type: 'string' }, model: { type: 'string' } }, USAGE);
  if (!parsed) return;
  const { values } = parsed;
  const port = values.port === undefined ? 8080 : positiveInteger('port', values.port, 0, 65535);
  if (!existsSync(`${WEB_DIR}whylesion.js`)) throw new UserError(`The browser build is missing (${WEB_DIR}whylesion.js); run npm run build:web first.`);
  const mounts: Mounts = { '/': WEB_DIR };
  if (values.model !== undefined) {
    const dir = resolve(values.model);
    if (!existsSync(dir) || !statSync(dir).isDirectory() || !existsSync(resolve(dir, 'open_clip_model.safetensors'))) {
      throw new UserError(`--model ${values.model} is not a folder holding open_clip_model.safetensors; the browser reads safetensors only (convert a .bin with whylesion convert).`);
    }
    mounts['/model/'] = dir;
  }
  const server = await serveStatic(mounts, { host: values.host, port }).catch((cause: NodeJS.ErrnoException) => {
    throw new UserError(`Cannot listen on ${values.host ?? '127.0.0.1'}:${port} (${cause.code ?? cause.message}); pick another --port.`, { cause });
  });
  console.log(`Serving the WhyLesionCLIP demo at ${server.url}${values.model !== undefined ? '?model=/model/' : ''} (Ctrl-C to stop)`);
  await new Promise<void>((done) => {
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  await server.close();
}
