/** `whylesion preprocess IMG [--size 224] [--exif-rotate] --out FILE.npy`: open_clip's eval preprocessing to .npy. */
import { rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import { preprocessImageFile } from '../image/load.js';
import { writeNpy } from '../io/npy.js';
import { parseCommand, parseMaxImagePixels, positiveInteger } from './args.js';

const HELP = `Usage: whylesion preprocess IMG [--size 224] [--exif-rotate] --out FILE.npy

Runs open_clip's eval preprocessing on IMG (Resize to the shorter side with Pillow's bicubic, CenterCrop,
RGB, ToTensor, Normalize with OpenAI's mean/std) and writes a float32 [3, SIZE, SIZE] NumPy .npy file.

Options:
  --size N        output side in pixels (default 224)
  --exif-rotate   apply the JPEG's EXIF orientation first (open_clip does not)
  --max-image-pixels N  refuse images of more pixels, decoded or resized (default 89478485, Pillow's limit)
  --out FILE.npy  where to write the array (written to a temporary file, then renamed)
  -h, --help      show this help
`;

export async function preprocessCommand(argv: string[]): Promise<void> {
  const parsed = parseCommand(
    'preprocess',
    argv,
    {
      size: { type: 'string' },
      'exif-rotate': { type: 'boolean' },
      'max-image-pixels': { type: 'string' },
      out: { type: 'string' },
    },
    HELP,
  );
  if (!parsed) return;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) {
    throw new UserError(
      `preprocess takes exactly one image path (got ${positionals.length}); run "whylesion preprocess --help".`,
    );
  }
  if (values.out === undefined)
    throw new UserError('preprocess needs --out FILE.npy to know where to write the array.');
  const size = values.size === undefined ? 224 : positiveInteger('size', values.size, 1, 4096);

  const maxImagePixels = parseMaxImagePixels(values['max-image-pixels']);
  const pixels = await preprocessImageFile(positionals[0]!, {
    size,
    exifRotate: values['exif-rotate'] ?? false,
    maxImagePixels,
  });
  const out = values.out;
  // Same directory, so the rename is atomic and readers never see a half-written file.
  const temp = join(dirname(out), `.${basename(out)}.${process.pid}.tmp`);
  try {
    await writeFile(temp, writeNpy([3, size, size], pixels));
    await rename(temp, out);
  } catch (error) {
    await rm(temp, { force: true });
    throw new UserError(
      `Could not write ${out} (${(error as NodeJS.ErrnoException).code ?? String(error)}); check that its folder exists and is writable.`,
      {
        cause: error,
      },
    );
  }
}
