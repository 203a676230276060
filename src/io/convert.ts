import { UserError } from '../errors.js';
import { FileAccess, writeSafetensors } from './source.js';
import type { SafetensorsOptions } from './safetensors.js';
import { openTorchBin } from './torch-bin.js';

/**
 * Converts a torch.save'd state dict (open_clip_pytorch_model.bin) to safetensors, tensor by tensor, keeping every
 * tensor's dtype and bytes exactly. Nothing in the pickle is executed (see pickle.ts).
 */
export async function convertBinToSafetensors(
  inPath: string,
  outPath: string,
  options: SafetensorsOptions = {},
): Promise<void> {
  const access = await FileAccess.open(inPath);
  try {
    const source = await openTorchBin(access, inPath, options);
    if (source.tensors.size === 0)
      throw new UserError(`${inPath} holds no tensors; check that it is a model checkpoint.`);
    const tensors = [...source.tensors.values()].map((info) => ({ ...info, data: () => source.readRaw(info.name) }));
    await writeSafetensors(outPath, tensors, { format: 'pt' });
  } finally {
    await access.close();
  }
}
