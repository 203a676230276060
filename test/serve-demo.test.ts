/** `whylesion serve-demo`: the compiled CLI serves the built page, the bundle and a model folder with byte ranges. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY } from './helpers.js';

const CLI = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
const MODEL = fileURLToPath(new URL('model', TINY));
let child: ChildProcess;
let url: string;

beforeAll(async () => {
  child = spawn(process.execPath, [CLI, 'serve-demo', '--port', '0', '--model', MODEL], { stdio: ['ignore', 'pipe', 'pipe'] });
  url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      const match = /at (http:\/\/\S+)/.exec(out);
      if (match) resolve(match[1]);
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
    }).on('error', reject).end();
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
    const response = await fetch(new URL('/model/open_clip_model.safetensors', url), { headers: { Range: 'bytes=100-1099' } });
    expect(response.status).toBe(206);
    expect(response.headers.get('content-range')).toBe(`bytes 100-1099/${weights.length}`);
    expect(Buffer.from(await response.arrayBuffer()).equals(weights.subarray(100, 1100))).toBe(true);
    const head = await fetch(new URL('/model/open_clip_model.safetensors', url), { method: 'HEAD' });
    expect(Number(head.headers.get('content-length'))).toBe(weights.length);
    const beyond = await fetch(new URL('/model/open_clip_model.safetensors', url), { headers: { Range: `bytes=${weights.length}-` } });
    expect(beyond.status).toBe(416);
  });

  it('serves nothing outside its folders', async () => {
    expect(await rawGet('/model/..%2F..%2F..%2Fcases.json')).toBe(404);
    expect(await rawGet('/../package.json')).toBe(404);
    expect(await rawGet('/no-such-file.js')).toBe(404);
  });
});
