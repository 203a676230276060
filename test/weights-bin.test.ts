import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { parseTorchPickle } from '../src/io/pickle.js';
import { SafetensorsSource } from '../src/io/safetensors.js';
import { convertBinToSafetensors } from '../src/io/convert.js';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { SafetensorsFile } from '../src/io/source.js';
import { BytesAccess } from '../src/io/tensor-source.js';
import { openTorchBin } from '../src/io/torch-bin.js';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'weights');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'whylesion-bin-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Converts `stem`.bin and checks every tensor against what Python wrote from the same torch tensors. */
async function expectConvertedLikePython(binPath: string, expectedPath: string, outPath: string): Promise<number> {
  await convertBinToSafetensors(binPath, outPath);
  const converted = await SafetensorsFile.open(outPath);
  const expected = await SafetensorsSource.fromBytes(await readFile(expectedPath));
  expect([...converted.tensors.values()]).toEqual([...expected.tensors.values()]);
  for (const { name, dtype } of expected.tensors.values()) {
    // Compare raw bits so NaNs, -0 and subnormals count too.
    const bits = async (source: SafetensorsSource) =>
      dtype === 'F32' ? new Uint32Array((await source.readF32(name)).buffer) : await source.readF16(name);
    if (dtype === 'BF16')
      expect(new Uint32Array((await converted.readF32(name)).buffer)).toEqual(
        new Uint32Array((await expected.readF32(name)).buffer),
      );
    else expect(await bits(converted)).toEqual(await bits(expected));
  }
  await converted.close();
  return expected.tensors.size;
}

describe('torch.save .bin conversion', () => {
  it('converts float32 tensors, shared storages, offsets, scalars, parameters and empty tensors exactly', async () => {
    const count = await expectConvertedLikePython(
      join(FIXTURES, 'basic-f32.bin'),
      join(FIXTURES, 'basic-f32.expected.safetensors'),
      join(dir, 'f32.safetensors'),
    );
    expect(count).toBe(7);
    const converted = await SafetensorsFile.open(join(dir, 'f32.safetensors'));
    const base = await converted.readF32('shared_base');
    expect(await converted.readF32('slice_of_shared')).toEqual(base.subarray(7, 19));
    expect((await converted.readF32('scalar'))[0]).toBe(Math.fround(4.605170249938965));
    await converted.close();
  });

  it('keeps float16 and bfloat16 bits, including infinities, NaN and subnormals', async () => {
    await expectConvertedLikePython(
      join(FIXTURES, 'basic-f16.bin'),
      join(FIXTURES, 'basic-f16.expected.safetensors'),
      join(dir, 'f16.safetensors'),
    );
    const converted = await SafetensorsFile.open(join(dir, 'f16.safetensors'));
    expect(converted.tensors.get('bf16_random')).toEqual({ name: 'bf16_random', dtype: 'BF16', shape: [5, 3] });
    const special = await converted.readF32('half_special');
    expect(Array.from(special.subarray(8, 10))).toEqual([Infinity, -Infinity]);
    expect(special[10]).toBeNaN();
    await converted.close();
  });

  it('converts a full tiny open_clip state dict (with _metadata) and opens a folder holding only the .bin', async () => {
    await expectConvertedLikePython(
      join(FIXTURES, 'tiny-bin', 'open_clip_pytorch_model.bin'),
      join(FIXTURES, 'tiny-openclip.expected.safetensors'),
      join(dir, 'tiny.safetensors'),
    );
    const folder = join(dir, 'tiny-folder');
    await cp(join(FIXTURES, 'tiny-bin'), folder, { recursive: true });
    const checkpoint = await openCheckpoint(folder);
    expect(checkpoint.weightsPath).toBe(join(folder, 'open_clip_model.safetensors'));
    expect(checkpoint.config.text.vocabSize).toBe(64);
    expect(checkpoint.source.tensors.size).toBe(62);
    const expected = await SafetensorsSource.fromBytes(
      await readFile(join(FIXTURES, 'tiny-openclip.expected.safetensors')),
    );
    expect(await checkpoint.source.readF16('visual.conv1.weight')).toEqual(
      await expected.readF16('visual.conv1.weight'),
    );
    await checkpoint.source.close();
  });

  it.each([
    [
      'noncontiguous.bin',
      /noncontiguous\.bin stores tensor transposed non-contiguously \(size \[4,3\], stride \[1,4\]\); save tensor\.contiguous\(\) instead\./,
    ],
    [
      'int64.bin',
      /int64\.bin stores tensor ids as torch\.LongStorage; whylesion converts only float32, float16 and bfloat16 tensors\./,
    ],
  ])('refuses %s with a clear UserError', async (file, message) => {
    const error = await convertBinToSafetensors(join(FIXTURES, file), join(dir, 'never.safetensors')).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toMatch(message);
  });

  it('refuses a legacy pickle, a non-zip file and a compressed archive', async () => {
    const legacy = await openTorchBin(new BytesAccess(Uint8Array.of(0x80, 2, 0x8a, 0x0a)), 'old.bin').catch(
      (e: unknown) => e,
    );
    expect((legacy as Error).message).toMatch(/old\.bin uses PyTorch's legacy \(pre-1\.6\) serialization/);
    const text = await openTorchBin(
      new BytesAccess(new TextEncoder().encode('<html>not found</html>')),
      'page.bin',
    ).catch((e: unknown) => e);
    expect((text as Error).message).toMatch(/page\.bin is not a torch\.save checkpoint \(no zip signature\)/);
    // Mark data.pkl as deflated in both headers: the reader must refuse rather than misread it.
    const bytes = new Uint8Array(await readFile(join(FIXTURES, 'int64.bin')));
    const view = new DataView(bytes.buffer);
    view.setUint16(8, 8, true);
    const central = bytes.findIndex((_, i) => view.getUint32(i, true) === 0x02014b50);
    view.setUint16(central + 10, 8, true);
    const compressed = await openTorchBin(new BytesAccess(bytes), 'zipped.bin').catch((e: unknown) => e);
    expect((compressed as Error).message).toMatch(/zipped\.bin has a compressed entry int64\/data\.pkl/);
  });

  it('follows the zip64 end record that torch writes when the classic one is saturated', async () => {
    const bytes = new Uint8Array(await readFile(join(FIXTURES, 'basic-f32.bin')));
    const view = new DataView(bytes.buffer);
    let eocd = bytes.length - 22;
    while (view.getUint32(eocd, true) !== 0x06054b50) eocd--;
    // As in a >4 GB archive: entry counts and directory position only in the zip64 record.
    view.setUint16(eocd + 8, 0xffff, true);
    view.setUint16(eocd + 10, 0xffff, true);
    view.setUint32(eocd + 12, 0xffffffff, true);
    view.setUint32(eocd + 16, 0xffffffff, true);
    const source = await openTorchBin(new BytesAccess(bytes), 'big.bin');
    const expected = await SafetensorsSource.fromBytes(
      await readFile(join(FIXTURES, 'basic-f32.expected.safetensors')),
    );
    expect(await source.readF32('matrix')).toEqual(await expected.readF32('matrix'));
  });
});

describe('pickle safety', () => {
  const fail = (bytes: number[]) => {
    try {
      parseTorchPickle(Uint8Array.from(bytes), 'evil.bin');
    } catch (error) {
      expect(error).toBeInstanceOf(UserError);
      return (error as Error).message;
    }
    throw new Error('accepted');
  };
  const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));

  it('refuses globals and opcodes a state dict never uses, executing nothing', () => {
    expect(fail([0x80, 2, ...ascii('cos\nsystem\n'), 0x2e])).toMatch(
      /evil\.bin is not a PyTorch state dict whylesion can read: it refers to os\.system/,
    );
    expect(fail([0x80, 2, ...ascii('cbuiltins\neval\n')])).toMatch(/builtins\.eval/);
    expect(fail([0x80, 2, 0x69])).toMatch(/pickle opcode 0x69 \('i'\) at byte 2, which torch\.save does not emit/);
    expect(fail([0x80, 2, 0x7d, 0x4b, 1, 0x4b, 2, 0x73, 0x2e])).toMatch(/dict key that is not a string/);
    expect(fail([0x80, 2, 0x7d, 0x58, 1, 0, 0, 0, 0x61, 0x4b, 2, 0x73, 0x2e])).toMatch(/entry 'a' is not a tensor/);
    expect(fail([0x80, 2, 0x7d])).toMatch(/ends in the middle of an instruction/);
    expect(fail([0x80, 2, 0x68, 9])).toMatch(/memo slot 9, which was never written/);
  });
});
