/**
 * A small static file server for the browser demo: GET and HEAD with byte ranges (the page reads weights
 * by Range requests), served from a few mounted folders, never outside them. Node http, no dependency.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.svg': 'image/svg+xml',
  '.wasm': 'application/wasm',
};

/** URL prefix (starting and ending with '/') -> folder on disk. */
export type Mounts = Record<string, string>;

export interface StaticServer {
  server: Server;
  url: string;
  /** Requests served so far, as "METHOD /path [range]", for tests that check what was fetched. */
  log: string[];
  close(): Promise<void>;
}

/** Resolves a request path to a file under one of the mounts, or undefined (outside them, or no mount). */
function fileFor(mounts: Mounts, pathname: string): string | undefined {
  const prefix = Object.keys(mounts).filter((p) => pathname.startsWith(p)).sort((a, b) => b.length - a.length)[0];
  if (prefix === undefined) return undefined;
  let rest: string;
  try {
    rest = decodeURIComponent(pathname.slice(prefix.length));
  } catch {
    return undefined;
  }
  const base = normalize(mounts[prefix]);
  const file = normalize(join(base, rest || 'index.html'));
  return file === base || file.startsWith(base.endsWith(sep) ? base : base + sep) ? file : undefined;
}

async function handle(mounts: Mounts, request: IncomingMessage, response: ServerResponse): Promise<void> {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { Allow: 'GET, HEAD' }).end();
    return;
  }
  const pathname = new URL(request.url ?? '/', 'http://localhost').pathname;
  let file = fileFor(mounts, pathname);
  let size = -1;
  if (file) {
    const info = await stat(file).catch(() => undefined);
    if (info?.isDirectory()) {
      file = join(file, 'index.html');
      size = (await stat(file).catch(() => undefined))?.size ?? -1;
    } else if (info?.isFile()) {
      size = info.size;
    }
  }
  if (!file || size < 0) {
    response.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
    return;
  }
  const headers: Record<string, string | number> = {
    'Content-Type': TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
    'Accept-Ranges': 'bytes',
    'Cache-Control': 'no-cache',
  };
  const range = /^bytes=(\d*)-(\d*)$/.exec(request.headers.range ?? '');
  let start = 0;
  let end = size - 1;
  let status = 200;
  if (range && (range[1] || range[2])) {
    start = range[1] ? Number(range[1]) : Math.max(0, size - Number(range[2]));
    end = range[1] && range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
    if (start > end || start >= size) {
      response.writeHead(416, { 'Content-Range': `bytes */${size}` }).end();
      return;
    }
    status = 206;
    headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
  }
  headers['Content-Length'] = end - start + 1;
  response.writeHead(status, headers);
  if (request.method === 'HEAD' || size === 0) {
    response.end();
    return;
  }
  createReadStream(file, { start, end }).on('error', () => response.destroy()).pipe(response);
}

/** Serves `mounts` on host:port (port 0: any free one); resolves once listening. */
export function serveStatic(mounts: Mounts, options: { host?: string; port?: number } = {}): Promise<StaticServer> {
  const log: string[] = [];
  const server = createServer((request, response) => {
    log.push(`${request.method} ${request.url}${request.headers.range ? ` ${request.headers.range}` : ''}`);
    handle(mounts, request, response).catch(() => {
      if (!response.headersSent) response.writeHead(500).end();
      else response.destroy();
    });
  });
  const host = options.host ?? '127.0.0.1';
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : options.port;
      resolve({
        server,
        url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/`,
        log,
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}
