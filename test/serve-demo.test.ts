/** `whylesion serve-demo`: the compiled CLI serves the built page, the bundle and a model folder with byte ranges. */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLoopback } from '../src/cli/serve-demo.js';
import { TINY } from './helpers.js';

const CLI = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
const MODEL = fileURLToPath(new URL('model', TINY));
let child: ChildProcess;
let url: string;

beforeAll(async () => {
  child = spawn(process.execPath, [CLI, 'serve-demo', '--port', '0', '--model', MODEL], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      const match = /at (http:\/\/\S+)/.exec(out);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`serve-demo exited with ${code}`)));
  });
});

afterAll(() => {
  child?.kill('SIGTERM');
});

/** A raw GET (fetch would normalize '..' away before sending it). */
function rawGet(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request(new URL(url), { path, method: 'GET' }, (response) => {
      response.resume();
      resolve(response.statusCode!);
    })
      .on('error', reject)
      .end();
  });
}

describe('whylesion serve-demo', () => {
  it('prints an address that loads the served model, and serves the page and the bundle', async () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?model=\/model\/$/);
    const page = await fetch(new URL('/', url));
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toContain('never leave this device');
    const bundle = await fetch(new URL('/whylesion.js', url));
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get('content-type')).toMatch(/javascript/);
    await bundle.body?.cancel();
  });

  it('answers Range requests for the weights with exactly those bytes', async () => {
    const weights = readFileSync(`${MODEL}/open_clip_model.safetensors`);
    const response = await fetch(new URL('/model/open_clip_model.safetensors', url), {
      headers: { Range: 'bytes=100-1099' },
    });
    expect(response.status).toBe(206);
    expect(response.headers.get('content-range')).toBe(`bytes 100-1099/${weights.length}`);
    expect(Buffer.from(await response.arrayBuffer()).equals(weights.subarray(100, 1100))).toBe(true);
    const head = await fetch(new URL('/model/open_clip_model.safetensors', url), { method: 'HEAD' });
    expect(Number(head.headers.get('content-length'))).toBe(weights.length);
    const beyond = await fetch(new URL('/model/open_clip_model.safetensors', url), {
      headers: { Range: `bytes=${weights.length}-` },
    });
    expect(beyond.status).toBe(416);
  });

  it('serves nothing outside its folders', async () => {
    expect(await rawGet('/model/..%2F..%2F..%2Fcases.json')).toBe(404);
    expect(await rawGet('/../package.json')).toBe(404);
    expect(await rawGet('/no-such-file.js')).toBe(404);
  });
});

/** Starts serve-demo with these arguments; resolves with its address and what it printed on stderr so far. */
function startServer(args: string[]): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  const server = spawn(process.execPath, [CLI, 'serve-demo', '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  server.stderr!.on('data', (chunk) => (err += chunk));
  return new Promise((resolve, reject) => {
    let out = '';
    server.stdout!.on('data', (chunk) => {
      out += chunk;
      const match = /at (http:\/\/\S+)/.exec(out);
      if (match) resolve({ child: server, url: match[1]!, stderr: () => err });
    });
    server.once('exit', (code) => reject(new Error(`serve-demo exited with ${code}: ${err}`)));
  });
}

function rawStatus(base: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request(new URL(base), { path, method: 'GET' }, (response) => {
      response.resume();
      resolve(response.statusCode!);
    })
      .on('error', reject)
      .end();
  });
}

describe('serve-demo serves only the demo and the model', () => {
  const work = mkdtempSync(join(tmpdir(), 'whylesion-serve-'));
  const modelDir = join(work, 'model');
  let server: { child: ChildProcess; url: string; stderr: () => string };

  beforeAll(async () => {
    mkdirSync(join(modelDir, '.git'), { recursive: true });
    copyFileSync(join(MODEL, 'open_clip_config.json'), join(modelDir, 'open_clip_config.json'));
    copyFileSync(join(MODEL, 'open_clip_model.safetensors'), join(modelDir, 'open_clip_model.safetensors'));
    writeFileSync(join(modelDir, '.env'), 'HF_TOKEN=secret\n');
    writeFileSync(join(modelDir, '.git', 'config'), '[remote "origin"]\n');
    writeFileSync(join(modelDir, 'notes.txt'), 'private notes\n');
    writeFileSync(join(work, 'outside.txt'), 'outside\n');
    symlinkSync('/etc/shadow', join(modelDir, 'shadow'));
    symlinkSync(join(work, 'outside.txt'), join(modelDir, 'outside.json'));
    server = await startServer(['--model', modelDir]);
  });
  afterAll(() => {
    server?.child.kill('SIGTERM');
    rmSync(work, { recursive: true, force: true });
  });

  it('serves the model files the page reads, by Range', async () => {
    expect(await rawStatus(server.url, '/model/open_clip_config.json')).toBe(200);
    const part = await fetch(new URL('/model/open_clip_model.safetensors', server.url), {
      headers: { Range: 'bytes=0-7' },
    });
    expect(part.status).toBe(206);
    expect((await part.arrayBuffer()).byteLength).toBe(8);
  });

  it('refuses dotfiles, dot-folders, other files, links out of the folder and encoded escapes (404)', async () => {
    for (const path of [
      '/model/.env',
      '/model/.git/config',
      '/model/%2egit/config',
      '/model/%2Eenv',
      '/model/notes.txt',
      '/model/shadow',
      '/model/outside.json',
      '/model/..%2Foutside.txt',
      '/model/%2e%2e/outside.txt',
      '/model/%2e%2e%2foutside.txt',
      '/model/../model/.env',
      '/.env',
      '/model/open_clip_config.json%00',
      '/model/sub/../.env',
    ]) {
      expect({ path, status: await rawStatus(server.url, path) }).toEqual({ path, status: 404 });
    }
  });

  it('sends no CORS headers and says nothing about the network on loopback', async () => {
    const page = await fetch(new URL('/', server.url), { headers: { Origin: 'http://example.com' } });
    expect(page.headers.get('access-control-allow-origin')).toBeNull();
    await page.body?.cancel();
    expect(server.stderr()).not.toMatch(/warning/);
  });

  it("a model file that links outside the folder is not served; a Hugging Face snapshot's links into blobs/ are", async () => {
    const linked = join(work, 'linked');
    mkdirSync(linked);
    copyFileSync(join(MODEL, 'open_clip_config.json'), join(linked, 'open_clip_config.json'));
    symlinkSync('/etc/passwd', join(linked, 'open_clip_model.safetensors'));
    const hub = join(work, 'models--x--tiny');
    mkdirSync(join(hub, 'blobs'), { recursive: true });
    mkdirSync(join(hub, 'snapshots', 'abc123'), { recursive: true });
    copyFileSync(join(MODEL, 'open_clip_model.safetensors'), join(hub, 'blobs', 'sha-weights'));
    copyFileSync(join(MODEL, 'open_clip_config.json'), join(hub, 'blobs', 'sha-config'));
    symlinkSync('../../blobs/sha-weights', join(hub, 'snapshots', 'abc123', 'open_clip_model.safetensors'));
    symlinkSync('../../blobs/sha-config', join(hub, 'snapshots', 'abc123', 'open_clip_config.json'));
    for (const [dir, weightsStatus] of [
      [linked, 404],
      [join(hub, 'snapshots', 'abc123'), 200],
    ] as const) {
      const other = await startServer(['--model', dir]);
      try {
        expect(await rawStatus(other.url, '/model/open_clip_model.safetensors')).toBe(weightsStatus);
      } finally {
        other.child.kill('SIGTERM');
      }
    }
  });

  it('--host with a non-loopback address warns that the page and the model are reachable from the network', async () => {
    const open = await startServer(['--host', '0.0.0.0', '--model', modelDir]);
    try {
      // stderr and stdout are separate pipes: wait for the warning's line end (the test timeout guards a hang).
      while (!open.stderr().includes('\n')) await new Promise((done) => setTimeout(done, 10));
      expect(open.stderr()).toMatch(
        /^whylesion: warning: listening on 0\.0\.0\.0, which is not a loopback address: the demo page and the model \(.*\) are reachable by anyone who can reach this machine on the network; leave out --host to serve this machine only\.\n$/,
      );
    } finally {
      open.child.kill('SIGTERM');
    }
    expect(
      isLoopback('127.0.0.1') &&
        isLoopback('::1') &&
        isLoopback('[::1]') &&
        isLoopback('localhost') &&
        isLoopback('127.1.2.3'),
    ).toBe(true);
    expect(isLoopback('0.0.0.0') || isLoopback('::') || isLoopback('192.168.1.5') || isLoopback('example.com')).toBe(
      false,
    );
  });
});
