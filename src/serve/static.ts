/**
 * A small static file server for the browser demo: GET and HEAD with byte ranges (the page reads weights
 * by Range requests), served from a few mounted folders, never outside them: no path with a segment that
 * starts with a dot (dotfiles, .git/, `..`), nothing whose real path (symlinks resolved) leaves the mount,
 * and, where a mount lists its files, nothing else. No CORS headers: the page and the model are meant for
 * the page served alongside them. Node http, no dependency.
 */
import { createReadStream, realpathSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
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

/** A served folder: only `files` in it when given; `realRoots` are other folders its symlinks may point into. */
export interface Mount {
  dir: string;
  files?: readonly string[];
  realRoots?: readonly string[];
}

/** URL prefix (starting and ending with '/') -> folder on disk. */
export type Mounts = Record<string, string | Mount>;

interface ResolvedMount {
  dir: string;
  files?: ReadonlySet<string>;
  /** Real paths (symlinks resolved) a served file must lie under. */
  roots: string[];
}

function resolveMounts(mounts: Mounts): Record<string, ResolvedMount> {
  const out: Record<string, ResolvedMount> = {};
  for (const [prefix, mount] of Object.entries(mounts)) {
    const { dir, files, realRoots = [] } = typeof mount === 'string' ? { dir: mount } : mount;
    const roots = [dir, ...realRoots].map((root) => {
      try {
        return realpathSync(root);
      } catch {
        return normalize(root);
      }
    });
    out[prefix] = { dir: normalize(dir), files: files && new Set(files), roots };
  }
  return out;
}

const within = (path: string, root: string): boolean =>
  path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);

export interface StaticServer {
  server: Server;
  url: string;
  /** Requests served so far, as "METHOD /path [range]", for tests that check what was fetched. */
  log: string[];
  close(): Promise<void>;
}

/** Resolves a request path to a file under one of the mounts, or undefined (outside them, hidden, or no mount). */
function fileFor(
  mounts: Record<string, ResolvedMount>,
  pathname: string,
): { file: string; mount: ResolvedMount } | undefined {
  const prefix = Object.keys(mounts)
    .filter((p) => pathname.startsWith(p))
    .sort((a, b) => b.length - a.length)[0];
  if (prefix === undefined) return undefined;
  let rest: string;
  try {
    rest = decodeURIComponent(pathname.slice(prefix.length));
  } catch {
    return undefined;
  }
  // Checked on the decoded path, so %2e%2e and %2f cannot slip a dot segment or a separator past it.
  if (rest.includes('\0') || rest.split(/[\\/]/).some((segment) => segment.startsWith('.'))) return undefined;
  const mount = mounts[prefix]!;
  if (mount.files && !mount.files.has(rest)) return undefined;
  const file = normalize(join(mount.dir, rest || 'index.html'));
  return within(file, mount.dir) ? { file, mount } : undefined;
}

/** The file's real path (every symlink resolved) and size when that lies in the mount. */
async function servedFile(file: string, mount: ResolvedMount): Promise<{ real: string; size: number } | undefined> {
  const real = await realpath(file).catch(() => undefined);
  if (real === undefined || !mount.roots.some((root) => within(real, root))) return undefined;
  const info = await stat(real).catch(() => undefined);
  return info?.isFile() ? { real, size: info.size } : undefined;
}

async function handle(
  mounts: Record<string, ResolvedMount>,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { Allow: 'GET, HEAD' }).end();
    return;
  }
  const pathname = new URL(request.url ?? '/', 'http://localhost').pathname;
  const found = fileFor(mounts, pathname);
  let file = found?.file;
  let size = -1;
  if (found && file) {
    const info = await stat(file).catch(() => undefined);
    if (info?.isDirectory() && !found.mount.files) file = join(file, 'index.html');
    const served = await servedFile(file, found.mount);
    // Read from the real path that was checked, so a link swapped meanwhile is not followed.
    file = served?.real;
    size = served?.size ?? -1;
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
  createReadStream(file, { start, end })
    .on('error', () => response.destroy())
    .pipe(response);
}

/** Serves `mounts` on host:port (port 0: any free one); resolves once listening. */
export function serveStatic(mounts: Mounts, options: { host?: string; port?: number } = {}): Promise<StaticServer> {
  const log: string[] = [];
  const resolved = resolveMounts(mounts);
  const server = createServer((request, response) => {
    log.push(`${request.method} ${request.url}${request.headers.range ? ` ${request.headers.range}` : ''}`);
    handle(resolved, request, response).catch(() => {
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
