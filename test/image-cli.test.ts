import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { preprocessCommand } from '../src/cli/preprocess.js';
import { UserError } from '../src/errors.js';
import { readNpy } from '../src/io/npy.js';

const REFERENCE = fileURLToPath(new URL('fixtures/openclip-tiny/', import.meta.url));

describe('whylesion preprocess', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'whylesion-preprocess-'));
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("writes open_clip's pixels as a float32 [3,224,224] .npy, leaving no temporary file", async () => {
    const out = join(dir, 'q90.npy');
    await preprocessCommand([`${REFERENCE}images/lesion_q90.jpg`, '--out', out]);
    const ours = readNpy(await readFile(out));
    const expected = readNpy(await readFile(`${REFERENCE}expected/pixels224_lesion_q90.npy`));
    expect(ours.shape).toEqual([3, 224, 224]);
    let max = 0;
    for (let i = 0; i < ours.data.length; i++)
      max = Math.max(max, Math.abs(Number(ours.data[i]) - Number(expected.data[i])));
    expect(max).toBeLessThanOrEqual(1e-6);
    expect(await readdir(dir)).toEqual(['q90.npy']);
  });

  it('honours --size', async () => {
    const out = join(dir, 'small.npy');
    await preprocessCommand([`${REFERENCE}images/lesion_gray.png`, '--size', '32', '--exif-rotate', '--out', out]);
    expect(readNpy(await readFile(out)).shape).toEqual([3, 32, 32]);
  });

  it('reports usage mistakes as UserError', async () => {
    await expect(preprocessCommand([`${REFERENCE}images/lesion_gray.png`])).rejects.toThrow(/needs --out/);
    await expect(preprocessCommand(['--out', join(dir, 'x.npy')])).rejects.toBeInstanceOf(UserError);
    await expect(preprocessCommand(['a.png', '--size', 'big', '--out', join(dir, 'x.npy')])).rejects.toThrow(
      /--size big/,
    );
    await expect(preprocessCommand(['a.png', '--bogus'])).rejects.toBeInstanceOf(UserError);
    await expect(
      preprocessCommand([`${REFERENCE}images/lesion_gray.png`, '--out', join(dir, 'no/such/dir/x.npy')]),
    ).rejects.toThrow(/Could not write .*ENOENT/);
  });
});
