import { createHash } from 'node:crypto';
import { mkdir, readFile, realpath, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { parseClipConfig, type ClipConfig } from '../model/config.js';
import { checkTensors } from '../model/layout.js';
import { convertBinToSafetensors } from './convert.js';
import { fileSha256 } from './file-hash.js';
import {
  HF_BIN_FILE,
  HF_CONFIG_FILE,
  HF_PREPROCESSOR_FILE,
  HF_SAFETENSORS_FILE,
  HF_TOKENIZER_FILES,
  HfClipTensorSource,
  isPositionIds,
  notClipError,
  isHfClipConfig,
  openClipConfigFromHf,
} from './hf-clip.js';
import { sha256Tag, type CheckpointIdentity } from './identity.js';
import type { SafetensorsOptions } from './safetensors.js';
import { SafetensorsFile } from './source.js';
import type { TensorSource } from './tensor-source.js';

export const CONFIG_FILE = 'open_clip_config.json';
export const SAFETENSORS_FILE = 'open_clip_model.safetensors';
export const BIN_FILE = 'open_clip_pytorch_model.bin';

export interface Checkpoint {
  /** Which files the folder holds: open_clip's, or transformers' CLIPModel read under open_clip's names. */
  layout: 'open_clip' | 'transformers';
  config: ClipConfig;
  rawConfig: object;
  source: TensorSource;
  /** The safetensors file the tensors come from (a converted copy when the folder only had a .bin). */
  weightsPath: string;
  /** The weights' and config's content hashes; `source` is the folder. */
  identity: CheckpointIdentity;
  /** A transformers checkpoint's own tokenizer: the folder holding vocab.json and merges.txt. */
  vocabPath?: string;
  /** A transformers checkpoint's parsed preprocessor_config.json, and where it came from. */
  preprocessor?: { raw: unknown; what: string };
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

/** Where a .bin goes when its own folder is read-only: keyed by the file's identity, so edits re-convert. */
async function cachedConversionPath(binPath: string): Promise<string> {
  const info = await stat(binPath);
  const identity = `${await realpath(binPath)}\n${info.size}\n${info.mtimeMs}`;
  const hash = createHash('sha256').update(identity).digest('hex').slice(0, 16);
  const cacheRoot = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(cacheRoot, 'whylesion', 'converted', hash, SAFETENSORS_FILE);
}

/** Converts the folder's .bin once, beside it or, if the folder is not writable, into the user's cache. */
async function convertedWeights(
  dir: string,
  binPath: string,
  safetensorsName = SAFETENSORS_FILE,
  options: SafetensorsOptions = {},
): Promise<string> {
  const beside = join(dir, safetensorsName);
  try {
    await convertBinToSafetensors(binPath, beside, options);
    return beside;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EROFS' && code !== 'EPERM') throw error;
  }
  const cached = join(await cachedConversionPath(binPath), '..', safetensorsName);
  if (await exists(cached)) return cached;
  await mkdir(join(cached, '..'), { recursive: true });
  await convertBinToSafetensors(binPath, cached, options);
  return cached;
}

/**
 * Opens an open_clip checkpoint folder as published on the Hub: open_clip_config.json plus
 * open_clip_model.safetensors (or open_clip_pytorch_model.bin, converted once), checked against the config.
 */
export async function openCheckpoint(dir: string): Promise<Checkpoint> {
  const configPath = join(dir, CONFIG_FILE);
  if (!(await exists(configPath)) && (await exists(join(dir, HF_CONFIG_FILE)))) return openHfCheckpoint(dir);
  let configBytes: Uint8Array;
  try {
    configBytes = await readFile(configPath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      const problem = (await exists(dir)) ? `has no ${CONFIG_FILE} or ${HF_CONFIG_FILE}` : 'does not exist';
      throw new UserError(
        `the model folder ${dir} ${problem}; point it at a folder holding an open_clip or transformers CLIP checkpoint.`,
        { cause: error },
      );
    }
    throw new UserError(`cannot read ${configPath} (${code ?? String(error)}); check its permissions.`, {
      cause: error,
    });
  }
  const rawConfig = parseJson(configBytes, configPath);
  const config = parseClipConfig(rawConfig, configPath);

  const safetensorsPath = join(dir, SAFETENSORS_FILE);
  const binPath = join(dir, BIN_FILE);
  let weightsPath: string;
  if (await exists(safetensorsPath)) weightsPath = safetensorsPath;
  else if (await exists(binPath)) weightsPath = await convertedWeights(dir, binPath);
  else
    throw new UserError(
      `the model folder ${dir} has no weights (looked for ${SAFETENSORS_FILE} and ${BIN_FILE}); download them beside ${CONFIG_FILE}.`,
    );

  const source = await SafetensorsFile.open(weightsPath);
  let identity: CheckpointIdentity;
  try {
    checkTensors(config, new Map([...source.tensors].map(([name, t]) => [name, t.shape])), weightsPath);
    identity = { weights: await fileSha256(weightsPath), config: await sha256Tag(configBytes), source: dir };
  } catch (error) {
    await source.close();
    throw error;
  }
  return { layout: 'open_clip', config, rawConfig: rawConfig as object, source, weightsPath, identity };
}

function parseJson(bytes: Uint8Array, path: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new UserError(`${path} is not valid JSON; re-download it.`, { cause: error });
  }
}

async function readOptional(path: string): Promise<Uint8Array | undefined> {
  return (await exists(path)) ? readFile(path) : undefined;
}

/** transformers' integer position_ids buffers are skipped, not refused. */
const HF_READ_OPTIONS: SafetensorsOptions = { skipNonFloat: isPositionIds };

/**
 * Opens a transformers CLIPModel folder (config.json + model.safetensors or pytorch_model.bin, converted once;
 * preprocessor_config.json and vocab.json + merges.txt when present) under open_clip's names and config.
 */
export async function openHfCheckpoint(dir: string): Promise<Checkpoint> {
  const configPath = join(dir, HF_CONFIG_FILE);
  const configBytes = await readFile(configPath);
  const hfConfig = parseJson(configBytes, configPath);
  if (!isHfClipConfig(hfConfig)) throw notClipError(configPath, hfConfig);
  const preprocessorPath = join(dir, HF_PREPROCESSOR_FILE);
  const preprocessorBytes = await readOptional(preprocessorPath);
  const preprocessor = preprocessorBytes && parseJson(preprocessorBytes, preprocessorPath);
  const rawConfig = openClipConfigFromHf(hfConfig, configPath, preprocessor);
  const config = parseClipConfig(rawConfig, `${configPath} (read as open_clip's config)`);

  const safetensorsPath = join(dir, HF_SAFETENSORS_FILE);
  const binPath = join(dir, HF_BIN_FILE);
  let weightsPath: string;
  if (await exists(safetensorsPath)) weightsPath = safetensorsPath;
  else if (await exists(binPath))
    weightsPath = await convertedWeights(dir, binPath, HF_SAFETENSORS_FILE, HF_READ_OPTIONS);
  else
    throw new UserError(
      `the model folder ${dir} has no weights (looked for ${HF_SAFETENSORS_FILE} and ${HF_BIN_FILE}); download them beside ${HF_CONFIG_FILE}.`,
    );
  const file = await SafetensorsFile.open(weightsPath, HF_READ_OPTIONS);
  let source: TensorSource = file;
  let identity: CheckpointIdentity;
  try {
    source = new HfClipTensorSource(file, { vision: config.vision.layers, text: config.text.layers });
    checkTensors(config, new Map([...source.tensors].map(([name, t]) => [name, t.shape])), weightsPath);
    // The preprocessing file changes the image embeddings, so it is part of what the numbers depend on.
    const configs = preprocessorBytes ? new Uint8Array([...configBytes, 0, ...preprocessorBytes]) : configBytes;
    identity = { weights: await fileSha256(weightsPath), config: await sha256Tag(configs), source: dir };
  } catch (error) {
    await source.close();
    throw error;
  }
  const hasTokenizer = (await Promise.all(HF_TOKENIZER_FILES.map((name) => exists(join(dir, name))))).every(Boolean);
  return {
    layout: 'transformers',
    config,
    rawConfig,
    source,
    weightsPath,
    identity,
    ...(hasTokenizer ? { vocabPath: dir } : {}),
    ...(preprocessorBytes ? { preprocessor: { raw: preprocessor, what: preprocessorPath } } : {}),
  };
}
