/**
 * Downloads from the Hugging Face Hub into the huggingface_hub cache layout, so a model fetched here and one
 * fetched by Python's huggingface_hub share the same files:
 *
 *   <cache>/models--{org}--{name}/blobs/{etag}                  file contents, named by ETag (sha256 for LFS files)
 *   <cache>/models--{org}--{name}/snapshots/{commit}/{file}     relative symlink to the blob (a copy where symlinks fail)
 *   <cache>/models--{org}--{name}/refs/{revision}               the commit hash the revision pointed to
 *
 * Node-only edge module (node:fs, node:crypto); the HTTP side uses fetch, which Node 20 and Deno both have.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import { homedir } from 'node:os';
import * as path from 'node:path';
import process from 'node:process';

import { UserError } from '../errors.js';
import {
  HF_BIN_FILE,
  HF_CONFIG_FILE,
  HF_PREPROCESSOR_FILE,
  HF_SAFETENSORS_FILE,
  HF_TOKENIZER_FILES,
  isHfClipConfig,
  notClipError,
} from './hf-clip.js';
import { ProgressBar, type DownloadProgress } from './progress.js';

export type { DownloadProgress } from './progress.js';

export interface HubOptions {
  /** Branch, tag or commit hash; default `main` (an `@revision` in an `hf-hub:` id takes precedence). */
  revision?: string;
  /** Cache root; default `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`. */
  cacheDir?: string;
  /** Hub URL; default `$HF_ENDPOINT`, else https://huggingface.co. */
  endpoint?: string;
  /** Access token for gated or private models; default `$HF_TOKEN`. */
  token?: string;
  /** Use only the cache; default true when `$HF_HUB_OFFLINE` is 1/true/yes/on. */
  offline?: boolean;
  /** Receives download progress; when given, no progress bar is drawn. */
  onProgress?: (progress: DownloadProgress) => void;
  /** The fetch to use; default the global one. */
  fetch?: typeof fetch;
}

/** Prefix of model ids that name a Hub repository rather than a local folder, as in open_clip. */
const HUB_PREFIX = 'hf-hub:';
const DEFAULT_ENDPOINT = 'https://huggingface.co';
const CONFIG_FILE = 'open_clip_config.json';
const SAFETENSORS_FILE = 'open_clip_model.safetensors';
const PYTORCH_FILE = 'open_clip_pytorch_model.bin';
const MAX_REDIRECTS = 10;
/** huggingface_hub's metadata timeout: a HEAD that hangs longer is treated as an unreachable Hub. */
const HEAD_TIMEOUT_MS = 10_000;

/** The Hub could not be reached at all (DNS failure, connection refused, timeout). */
export class HubUnreachableError extends UserError {
  constructor(
    readonly endpoint: string,
    readonly repoId: string,
    readonly filename: string,
    cause: unknown,
  ) {
    super(
      `Could not reach the Hugging Face Hub at ${endpoint} to download ${filename} from ${repoId}; ` +
        `download ${filename} from ${DEFAULT_ENDPOINT}/${repoId} on a machine with internet and use that local copy instead.`,
      { cause },
    );
    this.name = 'HubUnreachableError';
  }
}

/** The repository exists but has no such file at that revision. */
export class HubFileNotFoundError extends UserError {
  constructor(
    readonly repoId: string,
    readonly filename: string,
    readonly revision: string,
  ) {
    super(`${filename} does not exist in the Hugging Face model ${repoId} at revision ${revision}.`);
    this.name = 'HubFileNotFoundError';
  }
}

/** Offline mode is on and the file is not in the cache. */
class NotCachedOfflineError extends UserError {}

/** fetch itself failed: no HTTP answer came back. */
class NetworkError extends Error {}

/** The Hub answered, but is overloaded or failing (5xx, 429): a cached copy is still worth using. */
class HubUnavailableError extends UserError {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

interface Settings {
  endpoint: string;
  cacheDir: string;
  token: string | undefined;
  offline: boolean;
  fetch: typeof fetch;
  onProgress: ((progress: DownloadProgress) => void) | undefined;
}

interface HubFile {
  /** Path of the file in the snapshot folder. */
  path: string;
  commit: string;
}

/**
 * Turns a model argument into a local checkpoint folder: `hf-hub:org/name[@revision]` is downloaded (config and
 * weights, safetensors preferred over the PyTorch .bin) and its snapshot folder returned; anything else must be
 * an existing folder and is returned as is.
 */
export async function resolveModelDir(modelId: string, opts: HubOptions = {}): Promise<string> {
  if (!modelId.startsWith(HUB_PREFIX)) {
    let statError: unknown;
    const stat = await fs.stat(modelId).catch((error: unknown) => {
      statError = error;
    });
    if (!stat?.isDirectory()) {
      throw new UserError(
        `Model folder ${modelId} ${stat ? 'is not a folder' : 'does not exist'}; pass a folder holding ` +
          `${CONFIG_FILE} and the weights, or hf-hub:ID to download a model from the Hugging Face Hub.`,
        { cause: statError },
      );
    }
    return modelId;
  }
  const { repoId, revision } = parseHubModelId(modelId.slice(HUB_PREFIX.length), opts.revision);
  const settings = resolveSettings(opts);
  try {
    let config: HubFile;
    try {
      config = await fetchHubFile(repoId, CONFIG_FILE, revision, settings);
    } catch (error) {
      // Offline or unreachable, a transformers model may still be in the cache.
      const worthTryingTransformers =
        error instanceof HubFileNotFoundError ||
        error instanceof NotCachedOfflineError ||
        error instanceof HubUnreachableError;
      if (!worthTryingTransformers) throw error;
      return await fetchTransformersClip(repoId, revision, settings, error);
    }
    // Pin the weights to the config's commit so both files come from the same snapshot.
    await fetchWeights(repoId, config.commit, settings, OPEN_CLIP_WEIGHTS);
    return path.dirname(config.path);
  } catch (error) {
    if (error instanceof HubUnreachableError) {
      const name = repoId.split('/').pop();
      throw new UserError(
        `Could not reach the Hugging Face Hub at ${settings.endpoint} to download ${repoId}; download ` +
          `${CONFIG_FILE} and ${SAFETENSORS_FILE} (of a transformers CLIP: ${HF_CONFIG_FILE}, ${HF_SAFETENSORS_FILE}, ` +
          `${HF_PREPROCESSOR_FILE}, ${HF_TOKENIZER_FILES.join(' and ')}) from ${DEFAULT_ENDPOINT}/${repoId} on a machine with internet, ` +
          `put them in a folder (e.g. weights/${name}/) and pass that folder instead.`,
        { cause: error },
      );
    }
    throw error;
  }
}

/**
 * A repository without open_clip_config.json: a transformers CLIPModel (config.json with model_type "clip") is
 * downloaded with its weights, preprocessor_config.json and tokenizer files (the last three when present);
 * anything else is refused. `openClipError` is what looking for open_clip_config.json met.
 */
async function fetchTransformersClip(
  repoId: string,
  revision: string,
  settings: Settings,
  openClipError: UserError,
): Promise<string> {
  let config: HubFile;
  try {
    config = await fetchHubFile(repoId, HF_CONFIG_FILE, revision, settings);
  } catch (error) {
    if (error instanceof NotCachedOfflineError || error instanceof HubUnreachableError) throw openClipError;
    if (!(error instanceof HubFileNotFoundError)) throw error;
    throw new UserError(
      `The Hugging Face model ${repoId} has neither ${CONFIG_FILE} nor ${HF_CONFIG_FILE} at revision ${revision}, ` +
        `so it is not an open_clip or transformers CLIP model (or the model id is wrong); check the id on ${DEFAULT_ENDPOINT}/${repoId}.`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(config.path, 'utf8'));
  } catch (cause) {
    throw new UserError(`${config.path} is not valid JSON; delete it from the cache and download it again.`, { cause });
  }
  if (!isHfClipConfig(raw)) throw notClipError(`The Hugging Face model ${repoId}'s ${HF_CONFIG_FILE}`, raw);
  await fetchWeights(repoId, config.commit, settings, TRANSFORMERS_WEIGHTS);
  for (const name of [HF_PREPROCESSOR_FILE, ...HF_TOKENIZER_FILES]) {
    await fetchHubFile(repoId, name, config.commit, settings).catch((error: unknown) => {
      // Optional: without them, CLIPImageProcessor's defaults and the bundled vocabulary are what transformers uses.
      if (!(error instanceof HubFileNotFoundError || error instanceof NotCachedOfflineError)) throw error;
    });
  }
  return path.dirname(config.path);
}

/** The weight files of each layout, in the order their libraries prefer them. */
const OPEN_CLIP_WEIGHTS = { safetensors: SAFETENSORS_FILE, pytorch: PYTORCH_FILE, layout: 'open_clip' };
const TRANSFORMERS_WEIGHTS = { safetensors: HF_SAFETENSORS_FILE, pytorch: HF_BIN_FILE, layout: 'transformers CLIP' };

/** Safetensors when the repository has it, else the pickled PyTorch checkpoint (as open_clip and transformers do). */
async function fetchWeights(
  repoId: string,
  commit: string,
  settings: Settings,
  files: typeof OPEN_CLIP_WEIGHTS,
): Promise<HubFile> {
  try {
    return await fetchHubFile(repoId, files.safetensors, commit, settings);
  } catch (safetensorsError) {
    // Offline or unreachable, the .bin may still be in the cache.
    const worthTryingPytorch =
      safetensorsError instanceof HubFileNotFoundError ||
      safetensorsError instanceof NotCachedOfflineError ||
      safetensorsError instanceof HubUnreachableError;
    if (!worthTryingPytorch) throw safetensorsError;
    try {
      return await fetchHubFile(repoId, files.pytorch, commit, settings);
    } catch (pytorchError) {
      if (safetensorsError instanceof HubFileNotFoundError && pytorchError instanceof HubFileNotFoundError) {
        throw new UserError(
          `The Hugging Face model ${repoId} has neither ${files.safetensors} nor ${files.pytorch} at commit ${commit}; ` +
            `it holds no ${files.layout} weights.`,
        );
      }
      throw safetensorsError instanceof HubFileNotFoundError ? pytorchError : safetensorsError;
    }
  }
}

/**
 * Downloads one file of a Hub model repository into the cache (or finds it there) and returns its path in
 * the snapshot folder.
 */
export async function downloadHubFile(repoId: string, filename: string, opts: HubOptions = {}): Promise<string> {
  checkRepoId(repoId, repoId);
  const file = await fetchHubFile(repoId, filename, opts.revision ?? 'main', resolveSettings(opts));
  return file.path;
}

function parseHubModelId(id: string, revisionOption: string | undefined): { repoId: string; revision: string } {
  const at = id.indexOf('@');
  const repoId = at < 0 ? id : id.slice(0, at);
  const revision = at < 0 ? (revisionOption ?? 'main') : id.slice(at + 1);
  checkRepoId(repoId, HUB_PREFIX + id);
  if (revision === '') {
    throw new UserError(
      `The model id ${HUB_PREFIX}${id} has an empty revision after '@'; write ${HUB_PREFIX}org/name@revision.`,
    );
  }
  return { repoId, revision };
}

function checkRepoId(repoId: string, asWritten: string): void {
  // The Hub's own rule for repository names, which also keeps the id from escaping the cache folder.
  const part = '[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?';
  if (!new RegExp(`^(?:${part}/)?${part}$`).test(repoId) || repoId.includes('--') || repoId.includes('..')) {
    throw new UserError(
      `${asWritten} is not a valid Hugging Face model id; write it as org/name, e.g. yyupenn/whylesionclip.`,
    );
  }
}

function resolveSettings(opts: HubOptions): Settings {
  const env = process.env;
  const hfHome = env.HF_HOME || path.join(env.XDG_CACHE_HOME || path.join(homedir(), '.cache'), 'huggingface');
  return {
    endpoint: (opts.endpoint ?? (env.HF_ENDPOINT || DEFAULT_ENDPOINT)).replace(/\/+$/, ''),
    cacheDir: opts.cacheDir ?? (env.HF_HUB_CACHE || path.join(hfHome, 'hub')),
    token: opts.token ?? (env.HF_TOKEN || undefined),
    offline: opts.offline ?? ['1', 'true', 'yes', 'on'].includes((env.HF_HUB_OFFLINE ?? '').toLowerCase()),
    fetch: opts.fetch ?? globalThis.fetch,
    onProgress: opts.onProgress,
  };
}

async function fetchHubFile(repoId: string, filename: string, revision: string, settings: Settings): Promise<HubFile> {
  checkRelativePath(filename, 'file name');
  checkRelativePath(revision, 'revision');
  const repoDir = path.join(settings.cacheDir, `models--${repoId.replace('/', '--')}`);

  if (settings.offline) {
    const cached = await findCached(repoDir, revision, filename);
    if (cached) return cached;
    throw new NotCachedOfflineError(
      `Offline mode is on (HF_HUB_OFFLINE) and ${filename} of ${repoId} at revision ${revision} is not cached in ` +
        `${settings.cacheDir}; turn offline mode off to download it, or pass a local folder instead.`,
    );
  }

  const url = `${settings.endpoint}/${repoId}/resolve/${encodeURIComponent(revision)}/${filename
    .split('/')
    .map(encodeURIComponent)
    .join('/')}`;
  const request: RequestContext = { repoId, filename, revision, settings };
  let metadata: FileMetadata;
  try {
    metadata = await headFile(url, request);
  } catch (error) {
    // As huggingface_hub does: without an answer from the Hub, a cached copy of the revision is the best there is.
    if (!(error instanceof NetworkError || error instanceof HubUnavailableError)) throw error;
    const cached = await findCached(repoDir, revision, filename);
    if (cached) {
      const reason = error instanceof HubUnavailableError ? `HTTP ${error.status}` : error.message;
      console.warn(
        `The Hugging Face Hub at ${settings.endpoint} did not answer (${reason}); using the cached ${filename} ` +
          `of ${repoId} (commit ${cached.commit}).`,
      );
      return cached;
    }
    if (error instanceof HubUnavailableError) throw error;
    throw new HubUnreachableError(settings.endpoint, repoId, filename, error.cause);
  }

  if (revision !== metadata.commit) {
    const refPath = path.join(repoDir, 'refs', revision);
    const current = await fs.readFile(refPath, 'utf8').catch(() => undefined);
    if (current?.trim() !== metadata.commit) {
      await fs.mkdir(path.dirname(refPath), { recursive: true });
      await fs.writeFile(refPath, metadata.commit);
    }
  }
  const pointer = path.join(repoDir, 'snapshots', metadata.commit, filename);
  if (await exists(pointer)) return { path: pointer, commit: metadata.commit };

  const blob = path.join(repoDir, 'blobs', metadata.etag);
  if (!(await exists(blob))) {
    await fs.mkdir(path.dirname(blob), { recursive: true });
    await downloadBlob(url, blob, metadata, request);
  }
  await linkPointer(blob, pointer);
  return { path: pointer, commit: metadata.commit };
}

/** Rejects names that would leave their folder once joined to a path. */
function checkRelativePath(value: string, what: string): void {
  const parts = value.split('/');
  if (value.startsWith('/') || value.includes('\\') || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new UserError(
      `${value} is not a valid Hugging Face ${what}; use a plain name without '..', '\\' or empty parts.`,
    );
  }
}

async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(
    () => true,
    () => false,
  );
}

/** The cached snapshot file for a revision (a branch or tag resolved through refs/, or a commit hash). */
async function findCached(repoDir: string, revision: string, filename: string): Promise<HubFile | undefined> {
  const commit = /^[0-9a-f]{40}$/.test(revision)
    ? revision
    : (await fs.readFile(path.join(repoDir, 'refs', revision), 'utf8').catch(() => undefined))?.trim();
  if (!commit) return undefined;
  const pointer = path.join(repoDir, 'snapshots', commit, filename);
  return (await exists(pointer)) ? { path: pointer, commit } : undefined;
}

/** A relative link, as huggingface_hub makes, so the cache folder can be moved; a copy where links are refused. */
async function linkPointer(blob: string, pointer: string): Promise<void> {
  await fs.mkdir(path.dirname(pointer), { recursive: true });
  // A dangling link left from a deleted blob would make symlink() fail with EEXIST.
  await fs.rm(pointer, { force: true });
  try {
    await fs.symlink(path.relative(path.dirname(pointer), blob), pointer);
  } catch {
    await fs.copyFile(blob, pointer);
  }
}

interface RequestContext {
  repoId: string;
  filename: string;
  revision: string;
  settings: Settings;
}

interface FileMetadata {
  commit: string;
  /** Blob name: the sha256 for LFS files, the git blob hash otherwise. */
  etag: string;
  size: number | undefined;
}

function baseHeaders(settings: Settings): Record<string, string> {
  // identity: sizes and byte ranges must refer to the file itself, not a compressed form of it.
  const headers: Record<string, string> = { 'accept-encoding': 'identity', 'user-agent': 'whylesion' };
  if (settings.token) headers.authorization = `Bearer ${settings.token}`;
  return headers;
}

async function send(url: string, init: RequestInit, settings: Settings): Promise<Response> {
  try {
    return await settings.fetch(url, { ...init, redirect: 'manual' });
  } catch (error) {
    const reason = error instanceof Error && error.cause instanceof Error ? error.cause.message : String(error);
    throw new NetworkError(reason, { cause: error });
  }
}

function isRedirect(status: number): boolean {
  return [301, 302, 303, 307, 308].includes(status);
}

/**
 * HEAD without following redirects to other hosts, like huggingface_hub: the Hub answers an LFS file with a
 * redirect to its CDN whose headers carry the metadata. Relative redirects (a renamed repository) are followed.
 */
async function headFile(url: string, request: RequestContext): Promise<FileMetadata> {
  const { settings } = request;
  let current = url;
  for (let hop = 0; ; hop++) {
    const response = await send(
      current,
      { method: 'HEAD', headers: baseHeaders(settings), signal: AbortSignal.timeout(HEAD_TIMEOUT_MS) },
      settings,
    );
    const location = response.headers.get('location');
    if (isRedirect(response.status) && location?.startsWith('/') && !location.startsWith('//')) {
      if (hop >= MAX_REDIRECTS) throw tooManyRedirects(url);
      current = new URL(location, current).href;
      continue;
    }
    if (!response.ok && !isRedirect(response.status)) throw httpError(response, request);
    const headers = response.headers;
    const commit = headers.get('x-repo-commit');
    const etag = normalizeEtag(headers.get('x-linked-etag') ?? headers.get('etag'));
    const sizeHeader = headers.get('x-linked-size') ?? headers.get('content-length');
    if (!commit || !/^[A-Za-z0-9_-]+$/.test(commit) || !etag || !/^[A-Za-z0-9_-]+$/.test(etag)) {
      throw new UserError(
        `${settings.endpoint} did not answer like a Hugging Face Hub for ${request.filename} of ${request.repoId} ` +
          `(no X-Repo-Commit or ETag header); check HF_ENDPOINT.`,
      );
    }
    return { commit, etag, size: sizeHeader === null ? undefined : Number(sizeHeader) };
  }
}

function normalizeEtag(etag: string | null): string | undefined {
  return etag?.replace(/^W\//, '').replace(/"/g, '') || undefined;
}

function tooManyRedirects(url: string): UserError {
  return new UserError(`Downloading ${url} was redirected more than ${MAX_REDIRECTS} times; check HF_ENDPOINT.`);
}

/** Maps an HTTP error answer to the UserError it means, using the Hub's X-Error-Code where present. */
function httpError(response: Response, { repoId, filename, revision, settings }: RequestContext): Error {
  const code = response.headers.get('x-error-code');
  const status = response.status;
  if (code === 'RepoNotFound') {
    return new UserError(
      `The model ${repoId} does not exist on the Hugging Face Hub at ${settings.endpoint} (HTTP ${status}); check the ` +
        `model id, or set HF_TOKEN to a token that can read it if it is private.`,
    );
  }
  if (code === 'RevisionNotFound') {
    return new UserError(
      `The revision ${revision} does not exist in the Hugging Face model ${repoId}; check the @revision.`,
    );
  }
  if (status === 401 || status === 403 || code === 'GatedRepo') {
    return new UserError(
      settings.token
        ? `The Hugging Face Hub refused the token in HF_TOKEN for ${repoId} (HTTP ${status}); check that the token ` +
            `is valid and that its account has accepted the model's terms on ${DEFAULT_ENDPOINT}/${repoId}.`
        : `The Hugging Face Hub refused access to ${repoId} (HTTP ${status}); the model is gated or private, so ` +
            `accept its terms on ${DEFAULT_ENDPOINT}/${repoId} and set HF_TOKEN to an access token.`,
    );
  }
  if (status === 404) return new HubFileNotFoundError(repoId, filename, revision);
  const message = `The Hugging Face Hub at ${settings.endpoint} answered HTTP ${status} for ${filename} of ${repoId}; try again later.`;
  return status >= 500 || status === 429 ? new HubUnavailableError(message, status) : new UserError(message);
}

/**
 * GET following redirects by hand so the token goes only to the Hub itself, never to the CDN host an LFS file
 * is redirected to.
 */
async function getFollowingRedirects(
  url: string,
  headers: Record<string, string>,
  request: RequestContext,
): Promise<Response> {
  const origin = new URL(url).origin;
  let current = url;
  for (let hop = 0; ; hop++) {
    const sent = { ...headers };
    if (new URL(current).origin !== origin) delete sent.authorization;
    const response = await send(current, { method: 'GET', headers: sent }, request.settings);
    const location = response.headers.get('location');
    if (!isRedirect(response.status) || !location) return response;
    await response.body?.cancel();
    if (hop >= MAX_REDIRECTS) throw tooManyRedirects(url);
    current = new URL(location, current).href;
  }
}

/**
 * Streams a file into `<blob>.incomplete`, resuming a partial one with a Range request, checks its size and
 * (for LFS files) its sha256, and only then renames it to the blob.
 */
async function downloadBlob(url: string, blob: string, metadata: FileMetadata, request: RequestContext): Promise<void> {
  const { filename, repoId, settings } = request;
  const partial = `${blob}.incomplete`;
  const expectedSha256 = /^[0-9a-f]{64}$/.test(metadata.etag) ? metadata.etag : undefined;
  let resumeFrom = await fs.stat(partial).then(
    (s) => s.size,
    () => 0,
  );
  if (metadata.size !== undefined && resumeFrom > metadata.size) resumeFrom = 0;

  let loaded = resumeFrom;
  if (metadata.size === undefined || resumeFrom < metadata.size) {
    const headers = baseHeaders(settings);
    if (resumeFrom > 0) headers.range = `bytes=${resumeFrom}-`;
    let response: Response;
    try {
      response = await getFollowingRedirects(url, headers, request);
    } catch (error) {
      if (error instanceof NetworkError)
        throw new HubUnreachableError(settings.endpoint, repoId, filename, error.cause);
      throw error;
    }
    if (response.status === 416) {
      // The partial file does not fit the server's copy: start over on the next run.
      await response.body?.cancel();
      await fs.rm(partial, { force: true });
      throw new UserError(
        `The partial download of ${filename} from ${repoId} did not match the server's file; run again to download it afresh.`,
      );
    }
    if (!response.ok) throw httpError(response, request);
    // A server that ignores Range answers 200 with the whole file.
    if (response.status !== 206) resumeFrom = 0;
    loaded = resumeFrom;
    const total = metadata.size ?? contentLength(response, resumeFrom);
    const reporter = progressReporter(settings);
    const file = await fs.open(partial, resumeFrom > 0 ? 'a' : 'w');
    try {
      const reader = response.body!.getReader();
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (error) {
          throw new UserError(
            `The download of ${filename} from ${repoId} was interrupted after ${loaded} of ${total ?? '?'} bytes; ` +
              `run again to resume it.`,
            { cause: error },
          );
        }
        if (chunk.done) break;
        await file.write(chunk.value);
        loaded += chunk.value.length;
        reporter.update({ file: filename, loaded, total });
      }
      reporter.update({ file: filename, loaded, total }, true);
    } finally {
      reporter.end();
      await file.close();
    }
  }

  if (metadata.size !== undefined && loaded < metadata.size) {
    throw new UserError(
      `The download of ${filename} from ${repoId} ended after ${loaded} of ${metadata.size} bytes; run again to resume it.`,
    );
  }
  const corrupted =
    (metadata.size !== undefined && loaded !== metadata.size) ||
    (expectedSha256 !== undefined && (await sha256OfFile(partial)) !== expectedSha256);
  if (corrupted) {
    await fs.rm(partial, { force: true });
    throw new UserError(
      `The download of ${filename} from ${repoId} was corrupted (its size or sha256 does not match the Hub's); ` +
        `the broken file was deleted, run again to retry.`,
    );
  }
  await fs.rename(partial, blob);
}

function contentLength(response: Response, offset: number): number | undefined {
  const header = response.headers.get('content-length');
  return header === null ? undefined : offset + Number(header);
}

async function sha256OfFile(file: string): Promise<string> {
  const hash: Hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

interface ProgressReporter {
  update(progress: DownloadProgress, force?: boolean): void;
  end(): void;
}

/** The caller's callback when given; else a bar on stderr when it is a terminal; else nothing. */
function progressReporter(settings: Settings): ProgressReporter {
  const callback = settings.onProgress;
  if (callback) {
    let last = -1;
    return {
      update: (progress) => {
        if (progress.loaded === last) return;
        last = progress.loaded;
        callback(progress);
      },
      end: () => {},
    };
  }
  if (process.stderr.isTTY)
    return new ProgressBar(
      (text) => process.stderr.write(text),
      () => performance.now(),
    );
  return { update: () => {}, end: () => {} };
}
