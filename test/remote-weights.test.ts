import { createHash } from 'node:crypto';
/**
 * The runtime-neutral model sources the browser uses (HTTP Range reads, picked Files), run on Node against
 * the demo's static server and the tiny open_clip checkpoint: same tensors as the file on disk, clear errors.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/api/model.js';
import { UserError } from '../src/errors.js';
import { serveStatic, type StaticServer } from '../src/serve/static.js';
import { SafetensorsSource } from '../src/io/safetensors.js';
import { HttpRangeAccess, hubFolderUrl, openBlobCheckpoint } from '../src/io/remote.js';
import { loadNpy, maxAbsDiff, TINY } from './helpers.js';

const MODEL = fileURLToPath(new URL('model', TINY));
const weights = readFileSync(`${MODEL}/open_clip_model.safetensors`);
const configText = readFileSync(`${MODEL}/open_clip_config.json`, 'utf8');
let server: StaticServer;

/** Bit equality (toEqual walks a 3M-element array for a minute). */
const sameBytes = (a: Float32Array, b: Float32Array): boolean =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

beforeAll(async () => {
  server = await serveStatic({ '/model/': MODEL });
});
afterAll(async () => {
  await server.close();
});

describe('HTTP range reads', () => {
  it('reads every tensor as the file on disk holds it, reporting bytes as they arrive', async () => {
    const seen: number[] = [];
    const access = await HttpRangeAccess.open(new URL('/model/open_clip_model.safetensors', server.url).href, {
      onBytes: (loaded) => seen.push(loaded),
    });
    expect(access.size).toBe(weights.length);
    const remote = await SafetensorsSource.fromAccess(access, 'remote');
    const local = await SafetensorsSource.fromBytes(new Uint8Array(weights), 'local');
    for (const name of ['token_embedding.weight', 'visual.conv1.weight', 'logit_scale']) {
      expect(sameBytes(await remote.readF32(name), await local.readF32(name)), name).toBe(true);
    }
    expect(seen.length).toBeGreaterThan(3);
    expect(seen.every((v, i) => i === 0 || v > seen[i - 1]!)).toBe(true);
  });

  it('streams from a server that ignores Range: one request, every tensor in file order, never backwards', async () => {
    const requests: (string | undefined)[] = [];
    const whole = createServer((request, response) => {
      if (request.method === 'GET') requests.push(request.headers.range);
      response.writeHead(200, { 'Content-Length': weights.length });
      response.end(request.method === 'HEAD' ? undefined : weights);
    });
    await new Promise<void>((done) => whole.listen(0, '127.0.0.1', done));
    const port = (whole.address() as { port: number }).port;
    try {
      const seen: number[] = [];
      const stored = new Uint8Array(weights.length);
      const access = await HttpRangeAccess.open(`http://127.0.0.1:${port}/w.safetensors`, {
        onBytes: (loaded) => seen.push(loaded),
        onPiece: (at, bytes) => void stored.set(bytes, at),
      });
      const remote = await SafetensorsSource.fromAccess(access, 'remote');
      const local = await SafetensorsSource.fromBytes(new Uint8Array(weights), 'local');
      const names = [...remote.tensors.keys()];
      // The source lists tensors in data order (the header's JSON lists them by name).
      const header = JSON.parse(weights.subarray(8, 8 + Number(weights.readBigUInt64LE(0))).toString('utf8')) as Record<
        string,
        { data_offsets?: [number, number] }
      >;
      const byOffset = Object.entries(header)
        .filter(([n]) => n !== '__metadata__')
        .sort(([, a], [, b]) => a.data_offsets![0] - b.data_offsets![0])
        .map(([n]) => n);
      expect(names).toEqual(byOffset);
      for (const name of names)
        expect(sameBytes(await remote.readF32(name), await local.readF32(name)), name).toBe(true);
      expect(requests).toEqual(['bytes=0-7']); // one body, streamed once
      expect(seen.at(-1)).toBe(weights.length);
      // what passed through, padding included, is the file: the browser's stored copy is whole
      expect(Buffer.from(stored).equals(weights)).toBe(true);
      await expect(remote.readF32(names[0]!)).rejects.toThrow(/reads must go front to back/);
      await access.close();
    } finally {
      whole.close();
    }
  });

  it('a missing file is one sentence', async () => {
    await expect(HttpRangeAccess.open(new URL('/model/missing.safetensors', server.url).href)).rejects.toThrow(
      UserError,
    );
    await expect(HttpRangeAccess.open(new URL('/model/missing.safetensors', server.url).href)).rejects.toThrow(
      /HTTP 404/,
    );
  });

  it('names Hub folders as the Hub resolves them', () => {
    expect(hubFolderUrl('hf-hub:yyupenn/whylesionclip')).toBe(
      'https://huggingface.co/yyupenn/whylesionclip/resolve/main/',
    );
    expect(hubFolderUrl('hf-hub:yyupenn/whylesionclip@v1', { endpoint: 'https://hf-mirror.example/' })).toBe(
      'https://hf-mirror.example/yyupenn/whylesionclip/resolve/v1/',
    );
    expect(() => hubFolderUrl('hf-hub:whylesionclip')).toThrow(/not a Hub model id/);
  });
});

describe('picked files', () => {
  it('opens the config and safetensors Files, checked against each other', async () => {
    const files = [
      new File([configText], 'open_clip_config.json'),
      new File([weights], 'open_clip_model.safetensors', { lastModified: 1234 }),
    ];
    const { config, source, identity } = await openBlobCheckpoint(files);
    expect(config.embedDim).toBe(32);
    // Picked files are not hashed whole (1.7 GB in a page): known by name, size and time; the config by its sha256.
    expect(identity.weights).toBe(`blob:open_clip_model.safetensors:${weights.length}:1234`);
    expect(identity.config).toBe(`sha256:${createHash('sha256').update(configText).digest('hex')}`);
    const local = await SafetensorsSource.fromBytes(new Uint8Array(weights), 'local');
    expect(
      sameBytes(await source.readF32('token_embedding.weight'), await local.readF32('token_embedding.weight')),
    ).toBe(true);
  });

  it('asks for both files, and says a .bin must be converted first', async () => {
    await expect(openBlobCheckpoint([new File([configText], 'open_clip_config.json')])).rejects.toThrow(
      /Pick both open_clip_config.json and open_clip_model.safetensors/,
    );
    await expect(
      openBlobCheckpoint([
        new File([configText], 'open_clip_config.json'),
        new File(['x'], 'open_clip_pytorch_model.bin'),
      ]),
    ).rejects.toThrow(/whylesion convert/);
    const truncated = new File([weights.subarray(0, 5000)], 'open_clip_model.safetensors');
    await expect(openBlobCheckpoint([new File([configText], 'open_clip_config.json'), truncated])).rejects.toThrow(
      UserError,
    );
  });
});

describe('loadModel from picked files on Node', () => {
  it('embeds as open_clip does', async () => {
    const files = [new File([configText], 'open_clip_config.json'), new File([weights], 'open_clip_model.safetensors')];
    const model = await loadModel(files);
    try {
      const cases = JSON.parse(readFileSync(new URL('cases.json', TINY), 'utf8')) as { texts: string[] };
      const expected = loadNpy(new URL('expected/text_embeddings.npy', TINY));
      const rows = await model.encodeText(cases.texts, { normalize: true });
      rows.forEach((row, i) => {
        expect(maxAbsDiff(row, expected.data.subarray(i * 32, (i + 1) * 32))).toBeLessThanOrEqual(1e-5);
      });
      const image = readFileSync(new URL('images/lesion_q90.jpg', TINY));
      const [fromBlob] = await model.encodeImage(new Blob([image]), { normalize: true });
      if (fromBlob === undefined) throw new Error('missing fromBlob');
      const [fromBytes] = await model.encodeImage(new Uint8Array(image), { normalize: true });
      if (fromBytes === undefined) throw new Error('missing fromBytes');
      expect(maxAbsDiff(fromBlob, fromBytes)).toBe(0);
    } finally {
      model.dispose();
    }
  });
});
