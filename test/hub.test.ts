import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

import { UserError } from '../src/errors.js';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { downloadHubFile, resolveModelDir, type DownloadProgress } from '../src/io/hub.js';
import { hfClipTiny } from './helpers.js';

const MODEL = 'yyupenn/whylesionclip';
const COMMIT = `${'a'.repeat(8)}0123456789abcdef0123456789abcdef`;
const BIN_COMMIT = 'b'.repeat(40);
const TOKENIZER_COMMIT = 'c'.repeat(40);

/** Deterministic pseudo-random bytes, so the weights have no structure a bug could accidentally reproduce. */
function bytes(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let state = seed;
  for (let i = 0; i < length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    out[i] = state >>> 24;
  }
  return out;
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
/** The ETag the Hub gives a non-LFS file: its git blob hash. */
const gitBlobSha1 = (data: Buffer) => createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');

const CONFIG = Buffer.from('{"model_cfg": {"embed_dim": 768}, "preprocess_cfg": {}}\n');
const WEIGHTS = bytes(200_000, 1);
const BIN_WEIGHTS = bytes(50_000, 2);
const VOCAB = Buffer.from('{"<|startoftext|>": 49406}');
/** transformers' CLIPModel layout: the tiny fixture converted by reference/make_hf_clip.py. */
const HF_COMMIT = 'd'.repeat(40);
const HF_FILES = ['config.json', 'merges.txt', 'model.safetensors', 'preprocessor_config.json', 'vocab.json'];
const HF_TINY = hfClipTiny();
const hfFile = (name: string) => fs.readFileSync(path.join(HF_TINY, name));

interface FakeRepo {
  commit: string;
  files: Record<string, Buffer>;
  /** Access rule mimicking a gated repository: the token it needs. */
  requiredToken?: string;
}

const REPOS: Record<string, FakeRepo> = {
  [MODEL]: { commit: COMMIT, files: { 'open_clip_config.json': CONFIG, 'open_clip_model.safetensors': WEIGHTS } },
  'org/bin-only': {
    commit: BIN_COMMIT,
    files: { 'open_clip_config.json': CONFIG, 'open_clip_pytorch_model.bin': BIN_WEIGHTS },
  },
  'openai/clip-vit-large-patch14': { commit: TOKENIZER_COMMIT, files: { 'vocab.json': VOCAB } },
  'org/gated': { commit: COMMIT, files: { 'open_clip_config.json': CONFIG }, requiredToken: 'hf_right' },
  'openai/clip-tiny': { commit: HF_COMMIT, files: Object.fromEntries(HF_FILES.map((name) => [name, hfFile(name)])) },
  'org/hf-bin-only': {
    commit: HF_COMMIT,
    files: { 'config.json': hfFile('config.json'), 'pytorch_model.bin': BIN_WEIGHTS },
  },
  'google/siglip-like': { commit: HF_COMMIT, files: { 'config.json': Buffer.from('{"model_type": "siglip"}') } },
  'org/readme-only': { commit: HF_COMMIT, files: { 'README.md': Buffer.from('# nothing here\n') } },
};
const isLfs = (file: string) => file.endsWith('.safetensors') || file.endsWith('.bin');

interface LoggedRequest {
  server: 'hub' | 'cdn';
  method: string;
  url: string;
  authorization: string | undefined;
  range: string | undefined;
}

/**
 * A Hub look-alike: `/{repo}/resolve/{revision}/{file}` answers with the Hub's headers, LFS files redirect
 * (302, absolute URL) to a CDN server on another port, which honours Range requests.
 */
class FakeHub {
  requests: LoggedRequest[] = [];
  /** One-shot: the next CDN download sends this many bytes and then drops the connection. */
  cutNextDownloadAfter: number | undefined;
  /** The CDN serves flipped bytes (same length), as a broken proxy would. */
  corrupt = false;
  /** The CDN ignores Range and always sends the whole file with 200. */
  ignoreRange = false;
  /** The Hub answers everything with 503, as during an outage. */
  unavailable = false;

  private readonly hub = http.createServer((req, res) => this.serveHub(req, res));
  private readonly cdn = http.createServer((req, res) => void this.serveCdn(req, res));

  get endpoint(): string {
    return `http://127.0.0.1:${(this.hub.address() as AddressInfo).port}`;
  }

  private get cdnOrigin(): string {
    return `http://127.0.0.1:${(this.cdn.address() as AddressInfo).port}`;
  }

  async start(): Promise<void> {
    await Promise.all([this.hub, this.cdn].map((s) => new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok))));
  }

  async stop(): Promise<void> {
    for (const server of [this.hub, this.cdn]) {
      server.closeAllConnections();
      await new Promise((ok) => server.close(ok));
    }
  }

  reset(): void {
    this.requests = [];
    this.cutNextDownloadAfter = undefined;
    this.corrupt = false;
    this.ignoreRange = false;
    this.unavailable = false;
  }

  count(server: 'hub' | 'cdn', method: string): number {
    return this.requests.filter((r) => r.server === server && r.method === method).length;
  }

  private log(server: 'hub' | 'cdn', req: http.IncomingMessage): void {
    this.requests.push({
      server,
      method: req.method!,
      url: req.url!,
      authorization: req.headers.authorization,
      range: req.headers.range,
    });
  }

  private serveHub(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.log('hub', req);
    if (this.unavailable) {
      res.writeHead(503).end();
      return;
    }
    const match = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(req.url!);
    const repo = match ? REPOS[match[1]!] : undefined;
    if (!match || !repo) {
      res.writeHead(404, { 'X-Error-Code': 'RepoNotFound' }).end();
      return;
    }
    const [, , revision, file] = match;
    if (file === undefined) throw new Error('missing file');
    if (repo.requiredToken && req.headers.authorization !== `Bearer ${repo.requiredToken}`) {
      const status = req.headers.authorization ? 403 : 401;
      res.writeHead(status, { 'X-Error-Code': 'GatedRepo' }).end();
      return;
    }
    if (revision !== 'main' && revision !== repo.commit) {
      res.writeHead(404, { 'X-Error-Code': 'RevisionNotFound' }).end();
      return;
    }
    const body = repo.files[file];
    if (!body) {
      res.writeHead(404, { 'X-Error-Code': 'EntryNotFound', 'X-Repo-Commit': repo.commit }).end();
      return;
    }
    if (isLfs(file)) {
      const sha = sha256(body);
      res
        .writeHead(302, {
          Location: `${this.cdnOrigin}/cdn/${sha}`,
          'X-Repo-Commit': repo.commit,
          'X-Linked-Etag': `"${sha}"`,
          'X-Linked-Size': String(body.length),
          // The LFS pointer's git hash: must not be used as the blob name.
          ETag: `W/"${gitBlobSha1(Buffer.from(sha))}"`,
          'Content-Length': '0',
        })
        .end();
      return;
    }
    res.writeHead(200, {
      'X-Repo-Commit': repo.commit,
      ETag: `"${gitBlobSha1(body)}"`,
      'Content-Length': String(body.length),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  private async serveCdn(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    this.log('cdn', req);
    const sha = /^\/cdn\/([0-9a-f]{64})$/.exec(req.url!)?.[1];
    const file = Object.values(REPOS)
      .flatMap((r) => Object.values(r.files))
      .find((body) => sha256(body) === sha);
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    let body = this.corrupt ? Buffer.from(file.map((b) => b ^ 0xff)) : file;
    const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
    if (start > 0 && !this.ignoreRange) {
      res.writeHead(206, {
        'Content-Range': `bytes ${start}-${body.length - 1}/${body.length}`,
        'Content-Length': String(body.length - start),
      });
      body = body.subarray(start);
    } else {
      res.writeHead(200, { 'Content-Length': String(body.length) });
    }
    const cut = this.cutNextDownloadAfter;
    this.cutNextDownloadAfter = undefined;
    const sent = cut === undefined ? body : body.subarray(0, cut);
    // Several writes spaced in time, so the client sees several chunks (and reports progress between them).
    for (let offset = 0; offset < sent.length; offset += 65_536) {
      await new Promise<void>((ok) => res.write(sent.subarray(offset, offset + 65_536), () => ok()));
      await new Promise((ok) => setTimeout(ok, 2));
    }
    if (cut === undefined) res.end();
    else res.socket?.destroy();
  }
}

const hub = new FakeHub();
let cacheDir: string;
const repoDir = (id: string) => path.join(cacheDir, `models--${id.replace('/', '--')}`);
/** A port nothing listens on, so connecting is refused (port 1 is refused by fetch itself, before connecting). */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  await new Promise((ok) => server.close(ok));
  return port;
}

const noNetwork: typeof fetch = () => {
  throw new Error('the network must not be used');
};

beforeAll(() => hub.start());
afterAll(() => hub.stop());
beforeEach(() => {
  hub.reset();
  cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'whylesion-hub-'));
  // Isolate from the machine's own Hugging Face settings.
  vi.stubEnv('HF_TOKEN', '');
  vi.stubEnv('HF_HUB_OFFLINE', '');
  vi.stubEnv('HF_ENDPOINT', '');
  vi.stubEnv('HF_HUB_CACHE', '');
});
afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
  fs.rmSync(cacheDir, { recursive: true, force: true });
});

describe('resolveModelDir from the Hub', () => {
  it('downloads into the huggingface_hub cache layout (HF_ENDPOINT, HF_HUB_CACHE)', async () => {
    vi.stubEnv('HF_ENDPOINT', hub.endpoint);
    vi.stubEnv('HF_HUB_CACHE', cacheDir);
    const dir = await resolveModelDir(`hf-hub:${MODEL}`);

    const root = repoDir(MODEL);
    expect(dir).toBe(path.join(root, 'snapshots', COMMIT));
    expect(fs.readFileSync(path.join(root, 'refs', 'main'), 'utf8')).toBe(COMMIT);
    expect(fs.readdirSync(path.join(root, 'blobs')).sort()).toEqual([gitBlobSha1(CONFIG), sha256(WEIGHTS)].sort());
    expect(fs.readdirSync(dir).sort()).toEqual(['open_clip_config.json', 'open_clip_model.safetensors']);
    expect(fs.readlinkSync(path.join(dir, 'open_clip_config.json'))).toBe(`../../blobs/${gitBlobSha1(CONFIG)}`);
    expect(fs.readlinkSync(path.join(dir, 'open_clip_model.safetensors'))).toBe(`../../blobs/${sha256(WEIGHTS)}`);
    expect(fs.readFileSync(path.join(dir, 'open_clip_config.json')).equals(CONFIG)).toBe(true);
    expect(fs.readFileSync(path.join(dir, 'open_clip_model.safetensors')).equals(WEIGHTS)).toBe(true);
    // Metadata first (HEAD), then contents; the weights came from the CDN after the redirect.
    expect(hub.count('hub', 'HEAD')).toBe(2);
    expect(hub.count('hub', 'GET')).toBe(2);
    expect(hub.count('cdn', 'GET')).toBe(1);
  });

  it('does not download again what is cached, but still asks the Hub for the commit', async () => {
    const opts = { cacheDir, endpoint: hub.endpoint };
    const first = await resolveModelDir(`hf-hub:${MODEL}`, opts);
    hub.reset();
    const second = await resolveModelDir(`hf-hub:${MODEL}`, opts);
    expect(second).toBe(first);
    expect(hub.requests.map((r) => r.method)).toEqual(['HEAD', 'HEAD']);
  });

  it('falls back to open_clip_pytorch_model.bin when the safetensors file does not exist', async () => {
    const dir = await resolveModelDir('hf-hub:org/bin-only', { cacheDir, endpoint: hub.endpoint });
    expect(dir).toBe(path.join(repoDir('org/bin-only'), 'snapshots', BIN_COMMIT));
    expect(fs.readdirSync(dir).sort()).toEqual(['open_clip_config.json', 'open_clip_pytorch_model.bin']);
    expect(fs.readFileSync(path.join(dir, 'open_clip_pytorch_model.bin')).equals(BIN_WEIGHTS)).toBe(true);
  });

  it('resumes an interrupted download with a Range request', async () => {
    const opts = { cacheDir, endpoint: hub.endpoint };
    hub.cutNextDownloadAfter = 70_000;
    await expect(resolveModelDir(`hf-hub:${MODEL}`, opts)).rejects.toThrow(
      /interrupted after \d+ of 200000 bytes; run again/,
    );
    const partial = path.join(repoDir(MODEL), 'blobs', `${sha256(WEIGHTS)}.incomplete`);
    const partialSize = fs.statSync(partial).size;
    expect(partialSize).toBeGreaterThan(0);
    expect(partialSize).toBeLessThanOrEqual(70_000);
    expect(fs.existsSync(path.join(repoDir(MODEL), 'snapshots', COMMIT, 'open_clip_model.safetensors'))).toBe(false);

    hub.reset();
    const dir = await resolveModelDir(`hf-hub:${MODEL}`, opts);
    const cdnGets = hub.requests.filter((r) => r.server === 'cdn');
    expect(cdnGets.map((r) => r.range)).toEqual([`bytes=${partialSize}-`]);
    expect(fs.readFileSync(path.join(dir, 'open_clip_model.safetensors')).equals(WEIGHTS)).toBe(true);
    expect(fs.existsSync(partial)).toBe(false);
  });

  it('starts over when the server ignores the Range request', async () => {
    const opts = { cacheDir, endpoint: hub.endpoint };
    hub.cutNextDownloadAfter = 70_000;
    await expect(resolveModelDir(`hf-hub:${MODEL}`, opts)).rejects.toThrow(UserError);
    hub.reset();
    hub.ignoreRange = true;
    const dir = await resolveModelDir(`hf-hub:${MODEL}`, opts);
    expect(hub.requests.find((r) => r.server === 'cdn')?.range).toMatch(/^bytes=\d+-$/);
    expect(fs.readFileSync(path.join(dir, 'open_clip_model.safetensors')).equals(WEIGHTS)).toBe(true);
  });

  it('refuses a download whose sha256 does not match and leaves nothing behind', async () => {
    hub.corrupt = true;
    const download = downloadHubFile(MODEL, 'open_clip_model.safetensors', { cacheDir, endpoint: hub.endpoint });
    await expect(download).rejects.toThrow(/download of open_clip_model.safetensors from .* was corrupted/);
    await expect(download).rejects.toBeInstanceOf(UserError);
    expect(fs.readdirSync(path.join(repoDir(MODEL), 'blobs'))).toEqual([]);
    expect(fs.existsSync(path.join(repoDir(MODEL), 'snapshots', COMMIT, 'open_clip_model.safetensors'))).toBe(false);
  });

  it('uses only the cache in offline mode', async () => {
    const dir = await resolveModelDir(`hf-hub:${MODEL}`, { cacheDir, endpoint: hub.endpoint });
    vi.stubEnv('HF_HUB_OFFLINE', '1');
    expect(await resolveModelDir(`hf-hub:${MODEL}`, { cacheDir, fetch: noNetwork })).toBe(dir);
    expect(await resolveModelDir(`hf-hub:${MODEL}@${COMMIT}`, { cacheDir, fetch: noNetwork })).toBe(dir);
    await expect(resolveModelDir('hf-hub:org/bin-only', { cacheDir, fetch: noNetwork })).rejects.toThrow(
      /^Offline mode is on \(HF_HUB_OFFLINE\) and open_clip_config.json of org\/bin-only at revision main is not cached/,
    );
    await expect(resolveModelDir(`hf-hub:${MODEL}@v2`, { cacheDir, fetch: noNetwork })).rejects.toBeInstanceOf(
      UserError,
    );
  });

  it('uses the cache with a warning when the Hub cannot be reached', async () => {
    const dir = await resolveModelDir(`hf-hub:${MODEL}`, { cacheDir, endpoint: hub.endpoint });
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const endpoint = `http://127.0.0.1:${await closedPort()}`;
    expect(await resolveModelDir(`hf-hub:${MODEL}`, { cacheDir, endpoint })).toBe(dir);
    expect(warn).toHaveBeenCalledWith(
      `The Hugging Face Hub at ${endpoint} did not answer (connect ECONNREFUSED ${endpoint.slice(7)}); ` +
        `using the cached open_clip_config.json of ${MODEL} (commit ${COMMIT}).`,
    );
    expect(warn).toHaveBeenCalledTimes(2);
  });

  it('uses the cache with a warning while the Hub answers 503, and says to try later when nothing is cached', async () => {
    const dir = await resolveModelDir(`hf-hub:${MODEL}`, { cacheDir, endpoint: hub.endpoint });
    hub.unavailable = true;
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    expect(await resolveModelDir(`hf-hub:${MODEL}`, { cacheDir, endpoint: hub.endpoint })).toBe(dir);
    expect(warn).toHaveBeenCalledWith(
      expect.stringMatching(/did not answer \(HTTP 503\); using the cached open_clip_config.json/),
    );
    await expect(resolveModelDir('hf-hub:org/bin-only', { cacheDir, endpoint: hub.endpoint })).rejects.toThrow(
      /answered HTTP 503 for open_clip_config.json of org\/bin-only; try again later/,
    );
  });

  it('explains what to do when the Hub cannot be reached and nothing is cached', async () => {
    const refused = `http://127.0.0.1:${await closedPort()}`;
    await expect(resolveModelDir(`hf-hub:${MODEL}`, { cacheDir, endpoint: refused })).rejects.toThrow(
      `Could not reach the Hugging Face Hub at ${refused} to download ${MODEL}; download open_clip_config.json`,
    );
    const attempt = resolveModelDir(`hf-hub:${MODEL}`, { cacheDir, endpoint: 'http://127.0.0.1:1' });
    await expect(attempt).rejects.toBeInstanceOf(UserError);
    await expect(attempt).rejects.toThrow(
      'Could not reach the Hugging Face Hub at http://127.0.0.1:1 to download yyupenn/whylesionclip; download ' +
        'open_clip_config.json and open_clip_model.safetensors (of a transformers CLIP: config.json, model.safetensors, ' +
        'preprocessor_config.json, vocab.json and merges.txt) from https://huggingface.co/yyupenn/whylesionclip on ' +
        'a machine with internet, put them in a folder (e.g. weights/whylesionclip/) and pass that folder instead.',
    );
  });

  it('sends HF_TOKEN to the Hub but not to the CDN it redirects to', async () => {
    vi.stubEnv('HF_TOKEN', 'hf_secret');
    await resolveModelDir(`hf-hub:${MODEL}`, { cacheDir, endpoint: hub.endpoint });
    const hubRequests = hub.requests.filter((r) => r.server === 'hub');
    const cdnRequests = hub.requests.filter((r) => r.server === 'cdn');
    expect(hubRequests).toHaveLength(4);
    expect(hubRequests.every((r) => r.authorization === 'Bearer hf_secret')).toBe(true);
    expect(cdnRequests).toHaveLength(1);
    expect(cdnRequests[0]!.authorization).toBeUndefined();
  });

  it('reports progress with increasing byte counts up to the size', async () => {
    const events: DownloadProgress[] = [];
    await downloadHubFile(MODEL, 'open_clip_model.safetensors', {
      cacheDir,
      endpoint: hub.endpoint,
      onProgress: (p) => events.push(p),
    });
    expect(events.length).toBeGreaterThanOrEqual(2);
    expect(events.every((e) => e.file === 'open_clip_model.safetensors' && e.total === WEIGHTS.length)).toBe(true);
    for (let i = 1; i < events.length; i++) expect(events[i]!.loaded).toBeGreaterThan(events[i - 1]!.loaded);
    expect(events.at(-1)!.loaded).toBe(WEIGHTS.length);
  });

  it('maps refused access and unknown models to errors that say what to do', async () => {
    const opts = { cacheDir, endpoint: hub.endpoint };
    await expect(resolveModelDir('hf-hub:org/gated', opts)).rejects.toThrow(
      /refused access to org\/gated \(HTTP 401\).*set HF_TOKEN/,
    );
    await expect(resolveModelDir('hf-hub:org/gated', { ...opts, token: 'hf_wrong' })).rejects.toThrow(
      /refused the token in HF_TOKEN for org\/gated \(HTTP 403\)/,
    );
    await expect(resolveModelDir('hf-hub:nobody/nothing', opts)).rejects.toThrow(
      /^The model nobody\/nothing does not exist/,
    );
    await expect(resolveModelDir(`hf-hub:${MODEL}@v2`, opts)).rejects.toThrow(/revision v2 does not exist/);
    await expect(resolveModelDir('hf-hub:../etc', opts)).rejects.toThrow(/not a valid Hugging Face model id/);
  });
});

describe('resolveModelDir for a transformers CLIPModel repository', () => {
  it('downloads config.json, model.safetensors, preprocessor_config.json and the tokenizer files, and they load', async () => {
    const opts = { cacheDir, endpoint: hub.endpoint };
    const dir = await resolveModelDir('hf-hub:openai/clip-tiny', opts);
    expect(dir).toBe(path.join(repoDir('openai/clip-tiny'), 'snapshots', HF_COMMIT));
    expect(fs.readdirSync(dir).sort()).toEqual(HF_FILES);
    for (const name of HF_FILES) expect(fs.readFileSync(path.join(dir, name)).equals(hfFile(name)), name).toBe(true);
    // The open_clip config was asked for first, and is absent.
    expect(hub.requests.find((r) => r.url.endsWith('/open_clip_config.json'))).toBeDefined();
    const checkpoint = await openCheckpoint(dir);
    try {
      expect(checkpoint.source.tensors.size).toBe(62);
      expect(checkpoint.source.tensors.get('visual.transformer.resblocks.1.attn.in_proj_weight')?.shape).toEqual([
        192, 64,
      ]);
      expect(checkpoint.vocabPath).toBe(dir);
      expect(checkpoint.config.embedDim).toBe(32);
    } finally {
      await checkpoint.source.close();
    }
    // Offline, the cached snapshot is found again through config.json.
    expect(await resolveModelDir('hf-hub:openai/clip-tiny', { ...opts, offline: true, fetch: noNetwork })).toBe(dir);
  });

  it('uses the cached snapshot with a warning when the Hub cannot be reached', async () => {
    const dir = await resolveModelDir('hf-hub:openai/clip-tiny', { cacheDir, endpoint: hub.endpoint });
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const endpoint = `http://127.0.0.1:${await closedPort()}`;
    expect(await resolveModelDir('hf-hub:openai/clip-tiny', { cacheDir, endpoint })).toBe(dir);
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/; using the cached config\.json of openai\/clip-tiny/));
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/; using the cached vocab\.json of openai\/clip-tiny/));
  });

  it('falls back to pytorch_model.bin and goes on without the optional files', async () => {
    const dir = await resolveModelDir('hf-hub:org/hf-bin-only', { cacheDir, endpoint: hub.endpoint });
    expect(fs.readdirSync(dir).sort()).toEqual(['config.json', 'pytorch_model.bin']);
    expect(fs.readFileSync(path.join(dir, 'pytorch_model.bin')).equals(BIN_WEIGHTS)).toBe(true);
  });

  it('refuses other transformers models and repositories with neither config, in one sentence', async () => {
    const opts = { cacheDir, endpoint: hub.endpoint };
    await expect(resolveModelDir('hf-hub:google/siglip-like', opts)).rejects.toThrow(
      /^The Hugging Face model google\/siglip-like's config\.json describes a transformers "siglip" model, not CLIP; whylesion reads open_clip checkpoints \(open_clip_config\.json\) and transformers CLIPModel ones \(model_type "clip"\)\.$/,
    );
    expect(fs.existsSync(path.join(repoDir('google/siglip-like'), 'snapshots', HF_COMMIT, 'model.safetensors'))).toBe(
      false,
    );
    await expect(resolveModelDir('hf-hub:org/readme-only', opts)).rejects.toThrow(
      /^The Hugging Face model org\/readme-only has neither open_clip_config\.json nor config\.json at revision main, so it is not an open_clip or transformers CLIP model/,
    );
    await expect(
      resolveModelDir('hf-hub:openai/clip-tiny', { ...opts, offline: true, fetch: noNetwork }),
    ).rejects.toThrow(/^Offline mode is on \(HF_HUB_OFFLINE\) and open_clip_config\.json of openai\/clip-tiny/);
  });
});

describe('downloadHubFile', () => {
  it('fetches any file of a repository into its snapshot', async () => {
    const file = await downloadHubFile('openai/clip-vit-large-patch14', 'vocab.json', {
      cacheDir,
      endpoint: hub.endpoint,
    });
    expect(file).toBe(path.join(repoDir('openai/clip-vit-large-patch14'), 'snapshots', TOKENIZER_COMMIT, 'vocab.json'));
    expect(fs.readFileSync(file).equals(VOCAB)).toBe(true);
    await expect(
      downloadHubFile('openai/clip-vit-large-patch14', 'merges.txt', { cacheDir, endpoint: hub.endpoint }),
    ).rejects.toThrow(
      'merges.txt does not exist in the Hugging Face model openai/clip-vit-large-patch14 at revision main.',
    );
  });
});

describe('resolveModelDir with a local folder', () => {
  it('returns an existing folder as is', async () => {
    expect(await resolveModelDir(cacheDir)).toBe(cacheDir);
  });

  it('names a missing folder and the alternatives', async () => {
    const missing = path.join(cacheDir, 'nope');
    await expect(resolveModelDir(missing)).rejects.toThrow(`Model folder ${missing} does not exist; pass a folder`);
    await expect(resolveModelDir(missing)).rejects.toThrow(/or hf-hub:ID/);
  });
});
