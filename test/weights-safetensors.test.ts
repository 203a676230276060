import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { readNpy } from '../src/io/npy.js';
import { SafetensorsSource, encodeSafetensors } from '../src/io/safetensors.js';
import { SafetensorsFile, writeSafetensors } from '../src/io/source.js';
import { f16BitsToF32, f32ToF16Bits } from '../src/io/tensor-source.js';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'weights');
const TINY = join(import.meta.dirname, 'fixtures', 'openclip-tiny', 'model', 'open_clip_model.safetensors');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'whylesion-st-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Builds a safetensors file from a header object and a data section, for hand-made broken files. */
function rawFile(header: unknown, dataBytes: number, headerText = JSON.stringify(header)): Uint8Array {
  const json = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

async function errorOf(bytes: Uint8Array): Promise<UserError> {
  const error = await SafetensorsSource.fromBytes(bytes, 'model.safetensors').then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UserError);
  return error as UserError;
}

describe('safetensors round trip', () => {
  it('writes a file that Python-compatible readers see exactly and reads it back', async () => {
    const matrix = Float32Array.from({ length: 12 }, (_, i) => (i - 5.5) / 3);
    const halves = Uint16Array.from([0x3c00, 0xc000, 0x0001, 0x7c00, 0x8000]); // 1, -2, 2^-24, inf, -0
    const brains = Uint16Array.from([0x3f80, 0xc0a0, 0x0001]); // 1, -5, the smallest bf16 subnormal
    const path = join(dir, 'round.safetensors');
    await writeSafetensors(
      path,
      [
        { name: 'matrix', dtype: 'F32', shape: [3, 4], data: matrix },
        { name: 'half', dtype: 'F16', shape: [5], data: () => halves },
        { name: 'brain', dtype: 'BF16', shape: [3], data: async () => brains },
        { name: 'scalar', dtype: 'F32', shape: [], data: Float32Array.of(Math.log(100)) },
      ],
      { format: 'pt' },
    );
    const bytes = await readFile(path);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    expect(headerLength % 8).toBe(0); // padded with spaces like the reference writer
    expect(bytes.length).toBe(8 + headerLength + 48 + 10 + 6 + 4);

    const file = await SafetensorsFile.open(path);
    expect(file.metadata).toEqual({ format: 'pt' });
    expect([...file.tensors.values()]).toEqual([
      { name: 'matrix', dtype: 'F32', shape: [3, 4] },
      { name: 'half', dtype: 'F16', shape: [5] },
      { name: 'brain', dtype: 'BF16', shape: [3] },
      { name: 'scalar', dtype: 'F32', shape: [] },
    ]);
    expect(await file.readF32('matrix')).toEqual(matrix);
    expect(Array.from(await file.readF32('half'))).toEqual([1, -2, 2 ** -24, Infinity, -0]);
    expect(Array.from(await file.readF32('brain'))).toEqual([1, -5, 2 ** -133]);
    expect(await file.readF16('half')).toEqual(halves);
    // bf16 -> f16: 1 and -5 are exact; 2^-133 is far below f16's smallest subnormal and rounds to +0.
    expect(Array.from(await file.readF16('brain'))).toEqual([0x3c00, 0xc500, 0x0000]);
    const out = new Float32Array(1);
    expect(await file.readF32('scalar', out)).toBe(out);
    expect(out[0]).toBe(Math.fround(Math.log(100)));
    await file.close();
    expect(encodeSafetensors([{ name: 'matrix', dtype: 'F32', shape: [3, 4], data: matrix }]).length).toBe(8 + 64 + 48);
  });

  it('reads the reference checkpoint with the values Python stored', async () => {
    const file = await SafetensorsFile.open(TINY);
    expect(file.tensors.size).toBe(62);
    expect(file.tensors.get('token_embedding.weight')).toEqual({
      name: 'token_embedding.weight',
      dtype: 'F32',
      shape: [49408, 64],
    });
    const logitScale = await file.readF32('logit_scale');
    expect(logitScale[0]).toBeCloseTo(Math.log(100), 6);
    // Cross-check a positioned read against the raw bytes at the offsets in the header.
    const bytes = await readFile(TINY);
    const dataStart = 8 + Number(bytes.readBigUInt64LE(0));
    const classEmbedding = await file.readF32('visual.class_embedding');
    expect(classEmbedding[0]).toBe(bytes.readFloatLE(dataStart + 27908));
    expect(classEmbedding[63]).toBe(bytes.readFloatLE(dataStart + 27908 + 63 * 4));
    await file.close();
  });
});

describe('float conversions match NumPy', () => {
  it('converts every f16 bit pattern to f32 exactly (subnormals, infinities, NaNs)', async () => {
    const expected = readNpy(await readFile(join(FIXTURES, 'f16-all-as-f32.npy'))).data as Float32Array;
    const actual = new Float32Array(65536);
    f16BitsToF32(
      Uint16Array.from({ length: 65536 }, (_, i) => i),
      actual,
    );
    expect(new Uint32Array(actual.buffer)).toEqual(new Uint32Array(expected.buffer, expected.byteOffset, 65536));
  });

  it('rounds f32 to f16 to nearest even, as NumPy does, at and around every halfway point', async () => {
    const inputs = readNpy(await readFile(join(FIXTURES, 'f32-to-f16-in.npy'))).data as Float32Array;
    const expected = readNpy(await readFile(join(FIXTURES, 'f32-to-f16-out.npy'))).data as Int32Array;
    const actual = new Uint16Array(inputs.length);
    f32ToF16Bits(inputs, actual);
    const mismatches = [...actual].flatMap((bits, i) => (bits === expected[i] ? [] : [i]));
    expect(inputs.length).toBeGreaterThan(10000);
    expect(mismatches).toEqual([]);
  });
});

describe('safetensors validation', () => {
  const good = {
    a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
    b: { dtype: 'F16', shape: [2, 2], data_offsets: [8, 16] },
  };

  it('accepts the well-formed file these cases break', async () => {
    const source = await SafetensorsSource.fromBytes(rawFile(good, 16));
    expect([...source.tensors.keys()]).toEqual(['a', 'b']);
  });

  it.each([
    ['an empty file', new Uint8Array(0), /model\.safetensors is not a valid safetensors file: it is 0 bytes long/],
    ['a truncated length', new Uint8Array(5), /it is 5 bytes long, shorter than the 8-byte header length/],
    [
      'a header length beyond the file',
      rawFile(good, 16).slice(0, 40),
      /header length 110 runs past the end of the file \(40 bytes\)/,
    ],
    ['a header that is not JSON', rawFile(null, 0, '{"a": '), /header is not well-formed UTF-8 JSON/],
    ['a header that is a list', rawFile([1, 2], 0), /header is not a JSON object/],
    [
      'an unknown dtype',
      rawFile({ a: { dtype: 'F31', shape: [1], data_offsets: [0, 4] } }, 4),
      /tensor a has unknown dtype "F31"/,
    ],
    [
      'an integer dtype',
      rawFile({ ids: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, 8),
      /stores tensor ids as I64; whylesion reads only F32, F16 and BF16/,
    ],
    [
      'a fractional shape',
      rawFile({ a: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }, 4),
      /tensor a's shape \[1.5\] is not a list of non-negative integers/,
    ],
    [
      'offsets out of range',
      rawFile({ ...good, b: { dtype: 'F16', shape: [2, 2], data_offsets: [8, 16] } }, 12),
      /tensor b's offsets \[8,16\] run past the end of the data \(12 bytes\); re-download or re-convert it\./,
    ],
    [
      'decreasing offsets',
      rawFile({ a: { dtype: 'F32', shape: [0], data_offsets: [4, 0] } }, 4),
      /data_offsets \[4,0\] are not two increasing/,
    ],
    [
      'overlapping tensors',
      rawFile({ ...good, b: { dtype: 'F16', shape: [2, 2], data_offsets: [4, 12] } }, 16),
      /tensors a \[0,8\] and b \[4,12\] overlap/,
    ],
    [
      'a span that disagrees with the shape',
      rawFile({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8),
      /tensor a spans 8 bytes but shape \[3\] of F32 needs 12/,
    ],
    ['non-string metadata', rawFile({ __metadata__: { format: 1 } }, 0), /__metadata__ entry 'format' is not a string/],
  ])('refuses %s with a UserError', async (_, bytes, message) => {
    expect((await errorOf(bytes)).message).toMatch(message);
  });

  it('refuses a file on disk that ends before its data', async () => {
    const path = join(dir, 'cut.safetensors');
    const whole = encodeSafetensors([{ name: 'w', dtype: 'F32', shape: [4], data: new Float32Array(4) }]);
    await writeFile(path, whole.subarray(0, whole.length - 3));
    await expect(SafetensorsFile.open(path)).rejects.toThrow(
      /cut\.safetensors is not a valid safetensors file: tensor w's offsets \[0,16\] run past the end of the data \(13 bytes\)/,
    );
    await expect(SafetensorsFile.open(join(dir, 'absent.safetensors'))).rejects.toThrow(UserError);
  });
});
