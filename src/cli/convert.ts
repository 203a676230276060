import { UserError } from '../errors.js';
import { convertBinToSafetensors } from '../io/convert.js';
import { parseCommand } from './args.js';

const USAGE = `Usage: whylesion convert IN.bin OUT.safetensors

Converts a torch.save'd state dict (e.g. open_clip_pytorch_model.bin) to safetensors without Python,
keeping every tensor's dtype and values. Only plain state dicts of float32/float16/bfloat16 tensors are read,
and nothing in the pickle is executed.`;

export async function convertCommand(argv: string[]): Promise<void> {
  const parsed = parseCommand('convert', argv, {}, USAGE);
  if (!parsed) return;
  const [input, output] = parsed.positionals;
  if (parsed.positionals.length !== 2 || input === undefined || output === undefined)
    throw new UserError(
      'whylesion convert needs exactly two arguments, IN.bin and OUT.safetensors; see whylesion convert --help.',
    );
  await convertBinToSafetensors(input, output);
  console.log(`converted ${input} to ${output}`);
}
