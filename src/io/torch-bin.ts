import { UserError } from '../errors.js';
import { parseTorchPickle } from './pickle.js';
import type { SafetensorsOptions } from './safetensors.js';
import {
  DTYPE_BYTES,
  PlacedTensorSource,
  elementCount,
  type PlacedTensor,
  type RandomAccess,
} from './tensor-source.js';
import { readZipDirectory } from './zip.js';

/** data.pkl of a state dict is ~100 bytes per tensor; anything bigger than this is not one. */
const MAX_PICKLE_BYTES = 64 * 1024 * 1024;

function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    // Strides of size-1 dimensions never address anything, so torch leaves them arbitrary.
    if (shape[i] !== 1 && stride[i] !== expected) return false;
    expected *= shape[i]!;
  }
  return true;
}

/**
 * Opens a torch.save'd state dict (the zip format of PyTorch >= 1.6: `<archive>/data.pkl` plus one stored member
 * `<archive>/data/<key>` per storage) as a TensorSource, reading tensors straight out of the archive.
 */
export async function openTorchBin(
  access: RandomAccess,
  what: string,
  options: SafetensorsOptions = {},
): Promise<PlacedTensorSource> {
  const magic = new Uint8Array(Math.min(4, access.size));
  await access.read(0, magic);
  if (magic[0] === 0x80) {
    throw new UserError(
      `${what} uses PyTorch's legacy (pre-1.6) serialization; load it and re-save it with torch.save in PyTorch 1.6 or newer.`,
    );
  }
  if (magic.length < 4 || magic[0] !== 0x50 || magic[1] !== 0x4b || magic[2] !== 0x03 || magic[3] !== 0x04) {
    throw new UserError(`${what} is not a torch.save checkpoint (no zip signature); re-download it.`);
  }
  const entries = await readZipDirectory(access, what);
  const pickles = [...entries.keys()].filter((name) => /^[^/]+\/data\.pkl$/.test(name));
  if (pickles.length !== 1)
    throw new UserError(
      `${what} is a zip but not a torch.save checkpoint (it has ${pickles.length} data.pkl entries); re-download it.`,
    );
  const archive = pickles[0]!.slice(0, -'data.pkl'.length);
  const member = (name: string) => {
    const entry = entries.get(archive + name);
    if (entry?.compressed) {
      throw new UserError(
        `${what} has a compressed entry ${archive + name}; whylesion reads torch.save's uncompressed archives, so re-save it with torch.save.`,
      );
    }
    return entry;
  };

  const byteorder = member('byteorder');
  if (byteorder) {
    const text = new Uint8Array(Math.min(byteorder.size, 16));
    await access.read(byteorder.dataStart, text);
    if (new TextDecoder().decode(text) !== 'little')
      throw new UserError(`${what} was saved on a big-endian machine; re-save it on a little-endian one.`);
  }

  const pickleEntry = member('data.pkl')!;
  if (pickleEntry.size > MAX_PICKLE_BYTES)
    throw new UserError(`${what} has a ${pickleEntry.size}-byte data.pkl, too large for a state dict; re-download it.`);
  const pickleBytes = new Uint8Array(pickleEntry.size);
  await access.read(pickleEntry.dataStart, pickleBytes);
  const tensors = parseTorchPickle(pickleBytes, what);

  const placed = new Map<string, PlacedTensor>();
  for (const [name, tensor] of tensors) {
    const { storage, storageOffset, shape, stride } = tensor;
    if (!storage.dtype) {
      if (options.skipNonFloat?.(name)) continue;
      throw new UserError(
        `${what} stores tensor ${name} as torch.${storage.storageType}; whylesion converts only float32, float16 and bfloat16 tensors.`,
      );
    }
    if (!isContiguous(shape, stride)) {
      throw new UserError(
        `${what} stores tensor ${name} non-contiguously (size [${shape}], stride [${stride}]); save tensor.contiguous() instead.`,
      );
    }
    const entry = member(`data/${storage.key}`);
    if (!entry)
      throw new UserError(`${what} is missing the data of tensor ${name} (storage ${storage.key}); re-download it.`);
    const elementBytes = DTYPE_BYTES[storage.dtype];
    const count = elementCount(shape);
    if (entry.size < storage.numel * elementBytes || (count > 0 && storageOffset + count > storage.numel)) {
      throw new UserError(
        `${what} is damaged: tensor ${name} reaches past the end of its storage ${storage.key}; re-download it.`,
      );
    }
    placed.set(name, { name, dtype: storage.dtype, shape, position: entry.dataStart + storageOffset * elementBytes });
  }
  return new PlacedTensorSource(access, placed, what);
}
