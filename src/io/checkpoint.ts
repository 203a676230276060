import { createHash } from 'node:crypto';
import { mkdir, readFile, realpath, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { parseClipConfig, type ClipConfig } from '../model/config.js';
import { checkTensors } from '../model/layout.js';
import { convertBinToSafetensors } from './convert.js';
import { fileSha256 } from './file-hash.js';
import { sha256Tag, type CheckpointIdentity } from './identity.js';
import { SafetensorsFile } from './source.js';
import type { TensorSource } from './tensor-source.js';

export const CONFIG_FILE = 'open_clip_config.json';
export const SAFETENSORS_FILE = 'open_clip_model.safetensors';
export const BIN_FILE = 'open_clip_pytorch_model.bin';

export interface Checkpoint {
  config: ClipConfig;
  rawConfig: object;
  source: TensorSource;
  /** The safetensors file the tensors come from (a converted copy when the folder only had a .bin). */
  weightsPath: string;
  /** The weights' and config's content hashes; `source` is the folder. */
  identity: CheckpointIdentity;
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
async function convertedWeights(dir: string, binPath: string): Promise<string> {
  const beside = join(dir, SAFETENSORS_FILE);
  try {
    await convertBinToSafetensors(binPath, beside);
    return beside;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EROFS' && code !== 'EPERM') throw error;
  }
  const cached = await cachedConversionPath(binPath);
  if (await exists(cached)) return cached;
  await mkdir(join(cached, '..'), { recursive: true });
  await convertBinToSafetensors(binPath, cached);
  return cached;
}

/**
 * Opens an open_clip checkpoint folder as published on the Hub: open_clip_config.json plus
 * open_clip_model.safetensors (or open_clip_pytorch_model.bin, converted once), checked against the config.
 */
export async function openCheckpoint(dir: string): Promise<Checkpoint> {
  const configPath = join(dir, CONFIG_FILE);
  let text: string, configBytes: Uint8Array;
  try {
    configBytes = await readFile(configPath);
    text = new TextDecoder().decode(configBytes);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      const problem = (await exists(dir)) ? `has no ${CONFIG_FILE}` : 'does not exist';
      throw new UserError(`the model folder ${dir} ${problem}; point it at a folder holding an open_clip checkpoint.`, {
        cause: error,
      });
    }
    throw new UserError(`cannot read ${configPath} (${code ?? String(error)}); check its permissions.`, {
      cause: error,
    });
  }
  let rawConfig: unknown;
  try {
    rawConfig = JSON.parse(text);
  } catch (error) {
    throw new UserError(`${configPath} is not valid JSON; re-download it.`, { cause: error });
  }
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
  return { config, rawConfig: rawConfig as object, source, weightsPath, identity };
}
