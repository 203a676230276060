// Inputs that cannot take a run down: pixel bombs in every format refused from the header before any
// allocation, folder walks that visit each real directory once and skip unreadable ones, and the CLI's
// handling of one unreadable explicit file (exit 1) versus a bad file in a folder (skipped).
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { listImages } from '../src/cli/images.js';
import { UserError } from '../src/errors.js';
import { MAX_IMAGE_PIXELS, preprocessImage, readImageHeader } from '../src/image/index.js';
import { CLI_ENV, runCli, TINY, TINY_MODEL } from './helpers.js';

const MODEL = TINY_MODEL;
const GOOD_IMAGE = fileURLToPath(new URL('images/lesion_gray.png', TINY));
const env = CLI_ENV;
const work = mkdtempSync(join(tmpdir(), 'whylesion-inputs-'));
chmodSync(work, 0o755); // the unreadable-folder test lists it as another user
afterAll(() => rmSync(work, { recursive: true, force: true }));

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type: string, data: Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(crc32(body), 8 + data.length);
  return out;
}
/** A complete, valid RGB PNG of width x height black pixels (tiny once deflated). */
function blackPng(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const raw = Buffer.alloc(height * (1 + width * 3)); // filter byte 0 + zero samples per row
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

/** Headers that declare huge images, one per format, each a few dozen bytes. */
function headerBombs(): Record<string, Uint8Array> {
  const png = blackPng(1, 1);
  png.writeUInt32BE(50_000, 16);
  png.writeUInt32BE(50_000, 20);
  const jpeg = Buffer.from([
    0xff, 0xd8, 0xff, 0xc0, 0x00, 0x11, 0x08, 0xff, 0xff, 0xff, 0xff, 0x03, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1,
  ]);
  const gif = Buffer.from('GIF89a\xff\xff\xff\xff\x00\x00\x00', 'latin1');
  const bmp = Buffer.alloc(54);
  bmp.write('BM', 0, 'latin1');
  bmp.writeUInt32LE(40, 14);
  bmp.writeInt32LE(100_000, 18);
  bmp.writeInt32LE(-100_000, 22);
  bmp.writeUInt16LE(24, 28);
  const tiff = Buffer.alloc(8 + 2 + 2 * 12);
  tiff.write('II*\0', 0, 'latin1');
  tiff.writeUInt32LE(8, 4);
  tiff.writeUInt16LE(2, 8);
  tiff.writeUInt16LE(256, 10);
  tiff.writeUInt16LE(4, 12);
  tiff.writeUInt32LE(1, 14);
  tiff.writeUInt32LE(100_000, 18);
  tiff.writeUInt16LE(257, 22);
  tiff.writeUInt16LE(4, 24);
  tiff.writeUInt32LE(1, 26);
  tiff.writeUInt32LE(100_000, 30);
  const webpX = Buffer.alloc(30);
  webpX.write('RIFF', 0, 'latin1');
  webpX.writeUInt32LE(22, 4);
  webpX.write('WEBPVP8X', 8, 'latin1');
  webpX.writeUInt32LE(10, 16);
  webpX.writeUIntLE(16383, 24, 3);
  webpX.writeUIntLE(16383, 27, 3);
  const webpL = Buffer.alloc(30);
  webpL.write('RIFF', 0, 'latin1');
  webpL.writeUInt32LE(22, 4);
  webpL.write('WEBPVP8L', 8, 'latin1');
  webpL.writeUInt32LE(10, 16);
  webpL[20] = 0x2f;
  webpL.writeUInt32LE(0x3fff | (0x3fff << 14), 21);
  return {
    'bomb.png': png,
    'bomb.jpg': jpeg,
    'bomb.gif': gif,
    'bomb.bmp': bmp,
    'bomb.tif': tiff,
    'bomb-x.webp': webpX,
    'bomb-l.webp': webpL,
  };
}

async function refusal(work: Promise<unknown>): Promise<string> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UserError);
  return (error as Error).message;
}

describe('pixel bombs are refused from the header, before anything is allocated', () => {
  it('a 177-byte-class 100000x1 PNG and a 12000x1 PNG: the resized image would be the bomb', async () => {
    const rssBefore = process.memoryUsage().rss;
    const strip = blackPng(100_000, 1);
    expect(strip.length).toBeLessThan(1000);
    expect(await refusal(preprocessImage(strip, {}, 'strip.png'))).toBe(
      'strip.png is 100000x1, which resized for the model would be 22400000x224 = 5017600000 pixels, above the limit of 89478485 ' +
        "(a decompression-bomb guard, Pillow's MAX_IMAGE_PIXELS); crop it to a less extreme aspect ratio first, or raise the limit with --max-image-pixels.",
    );
    expect(await refusal(preprocessImage(blackPng(12_000, 1), {}, 'wide.png'))).toMatch(
      /^wide\.png is 12000x1, which resized for the model would be 2688000x224 = 602112000 pixels/,
    );
    // Before the fix these took 1.7 and 2.1 GB; a refusal from the header allocates next to nothing.
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(100 * 2 ** 20);
  });

  it('every format: PNG, JPEG, GIF, BMP, TIFF, WebP (VP8X and VP8L) declaring huge sizes', async () => {
    const rssBefore = process.memoryUsage().rss;
    for (const [name, bytes] of Object.entries(headerBombs())) {
      const header = readImageHeader(bytes, name, { maxImagePixels: Number.MAX_SAFE_INTEGER });
      expect(header.width * header.height).toBeGreaterThan(MAX_IMAGE_PIXELS);
      expect(await refusal(preprocessImage(bytes, {}, name))).toMatch(
        new RegExp(`^${name.replace('.', '\\.')} is \\d+x\\d+ = \\d+ pixels, above the limit of 89478485`),
      );
    }
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(100 * 2 ** 20);
  });

  it('a BMP declaring a 4-billion-colour palette is refused, not looped over (found by the fuzzer: it ran out of memory)', async () => {
    const bmp = Buffer.alloc(54);
    bmp.write('BM', 0, 'latin1');
    bmp.writeUInt32LE(40, 14);
    bmp.writeInt32LE(4, 18);
    bmp.writeInt32LE(4, 22);
    bmp.writeUInt16LE(8, 28);
    bmp.writeUInt32LE(0xffffffff, 46);
    expect(await refusal(preprocessImage(bmp, {}, 'palette.bmp'))).toBe(
      'palette.bmp declares a BMP palette of 4294967295 colours (Pillow reads at most 65536); re-export it.',
    );
  });

  it('a GIF whose image data ends early is refused, and its decoder prints nothing on stdout', async () => {
    const gif = new Uint8Array(readFileSync(fileURLToPath(new URL('fixtures/image/src/anim.gif', import.meta.url))));
    const log = vi.spyOn(console, 'log');
    try {
      // One damaged byte in the LZW data: the decoder's "gif stream longer than expected" case.
      const damaged = gif.slice();
      damaged[897] = 0xff;
      expect(await refusal(preprocessImage(damaged, {}, 'bad.gif'))).toBe(
        'bad.gif is a damaged or truncated GIF (its image data runs past its size); re-download or re-export it.',
      );
      // Cut inside the data: refused by the decoder itself.
      expect(await refusal(preprocessImage(gif.subarray(0, Math.floor(gif.length * 0.6)), {}, 'cut.gif'))).toMatch(
        /^cut\.gif could not be decoded as GIF/,
      );
      expect(log).not.toHaveBeenCalled();
    } finally {
      log.mockRestore();
    }
  });

  it('the limit is an option: lower refuses what the default takes, a bad limit is refused', async () => {
    const square = blackPng(120, 100);
    expect((await preprocessImage(square, {}, 'ok.png')).length).toBe(3 * 224 * 224);
    expect(await refusal(preprocessImage(square, { maxImagePixels: 10_000 }, 'ok.png'))).toMatch(
      /^ok\.png is 120x100 = 12000 pixels, above the limit of 10000 /,
    );
    // Decoded 120x100 fits 60,000, resized 268x224 = 60,032 does not.
    expect(await refusal(preprocessImage(square, { maxImagePixels: 60_000 }, 'ok.png'))).toMatch(
      /resized for the model would be 268x224 = 60032 pixels, above the limit of 60000/,
    );
    expect(await refusal(preprocessImage(square, { maxImagePixels: 0 }, 'ok.png'))).toMatch(
      /pixel limit 0 is not a positive whole number/,
    );
    expect(await refusal(preprocessImage(square, { maxImagePixels: 1.5 }, 'ok.png'))).toMatch(
      /pixel limit 1\.5 is not a positive whole number/,
    );
  });
});

describe('folder walks', () => {
  it('symlink loops and links to .. add nothing; a file reached through links is listed once; deep trees do not overflow', async () => {
    const root = join(work, 'loops');
    const images = join(root, 'images');
    mkdirSync(join(images, 'sub'), { recursive: true });
    copyFileSync(GOOD_IMAGE, join(images, 'a.png'));
    copyFileSync(GOOD_IMAGE, join(images, 'sub', 'b.png'));
    copyFileSync(GOOD_IMAGE, join(root, 'beside.png'));
    symlinkSync('.', join(images, 'self'));
    symlinkSync('..', join(images, 'sub', 'up'));
    symlinkSync('a.png', join(images, 'again.png'));
    symlinkSync(join(images, 'sub'), join(images, 'zz-sub-link'));
    let deep = join(images, 'deep');
    for (let i = 0; i < 60; i++) deep = join(deep, 'd');
    mkdirSync(deep, { recursive: true });
    copyFileSync(GOOD_IMAGE, join(deep, 'deep.png'));
    symlinkSync(images, join(deep, 'back-to-top'));
    const notices: string[] = [];
    const files = await listImages([images], (m) => notices.push(m));
    expect(files).toEqual([join(images, 'a.png'), join(deep, 'deep.png'), join(images, 'sub', 'b.png')]);
    expect(notices).toEqual([]);
    // A glob over the same tree and the folder again: still each file once.
    expect(await listImages([`${images}/**/*.png`, images])).toEqual(files);
  });

  it('an unreadable subfolder is skipped with a notice; the rest is listed', async (ctx) => {
    const root = join(work, 'locked-tree');
    mkdirSync(join(root, 'locked'), { recursive: true });
    chmodSync(root, 0o755);
    copyFileSync(GOOD_IMAGE, join(root, 'open.png'));
    copyFileSync(GOOD_IMAGE, join(root, 'locked', 'hidden.png'));
    chmodSync(join(root, 'locked'), 0o000);
    // Root reads any folder whatever its mode: list as an unprivileged user instead (this test process runs in a fork).
    const asRoot = process.getuid?.() === 0;
    if (asRoot && typeof process.seteuid !== 'function') ctx.skip(); // no way to drop privileges here
    const notices: string[] = [];
    let files: string[];
    if (asRoot) process.seteuid!(65534);
    try {
      files = await listImages([root], (m) => notices.push(m));
    } finally {
      if (asRoot) process.seteuid!(0);
      chmodSync(join(root, 'locked'), 0o755);
    }
    expect(files).toEqual([join(root, 'open.png')]);
    expect(notices).toEqual([`whylesion: skipped the folder ${join(root, 'locked')}, which cannot be read (EACCES).`]);
  });

  it('names with a TAB or a newline are listed whole', async () => {
    const root = join(work, 'odd-names');
    mkdirSync(root);
    for (const name of ['tab\there.png', 'new\nline.png']) copyFileSync(GOOD_IMAGE, join(root, name));
    expect(await listImages([root])).toEqual([join(root, 'new\nline.png'), join(root, 'tab\there.png')]);
  });
});

describe('the CLI: a bad file in a folder is skipped, one explicit unreadable file is exit 1', () => {
  const labels = ['--labels', 'melanoma,nevus', '--model', MODEL];

  it('a folder holding a pixel bomb and a good image: the good one is classified, the bomb skipped with its reason, exit 0', async () => {
    const folder = join(work, 'mixed');
    mkdirSync(folder);
    copyFileSync(GOOD_IMAGE, join(folder, 'good.png'));
    writeFileSync(join(folder, 'bomb.png'), blackPng(100_000, 1));
    const { stdout, stderr, code } = await runCli(['classify', folder, ...labels, '--format', 'csv'], env);
    expect(code).toBe(0);
    expect(stdout).toContain(join(folder, 'good.png'));
    expect(stdout).not.toContain('bomb.png');
    expect(stderr).toContain(
      `${join(folder, 'bomb.png')} is 100000x1, which resized for the model would be 22400000x224`,
    );
    expect(stderr).not.toMatch(/RangeError|internal error|\n\s+at /);
  });

  it('classify bomb.png and classify notes.txt exit 1 with one sentence', async () => {
    const bomb = join(work, 'bomb.png');
    writeFileSync(bomb, blackPng(100_000, 1));
    const notes = join(work, 'notes.txt');
    writeFileSync(notes, 'not an image\n');
    for (const [file, message] of [
      [
        bomb,
        `${bomb} is 100000x1, which resized for the model would be 22400000x224 = 5017600000 pixels, above the limit of 89478485`,
      ],
      [
        notes,
        `${notes} is not a PNG, JPEG, GIF, BMP, TIFF or WebP image (unrecognized header); convert it to PNG or JPEG.`,
      ],
    ] as [string, string][]) {
      const { stdout, stderr, code } = await runCli(['classify', file, ...labels], env);
      expect({ file, code }).toEqual({ file, code: 1 });
      expect(stdout).toBe('');
      expect(stderr.trim().split('\n')).toHaveLength(1);
      expect(stderr).toContain(message);
    }
  });

  it('embed --out with nothing readable exits 1 with one sentence and writes nothing; a shard keeps its empty part', async () => {
    const folder = join(work, 'unreadable-only');
    mkdirSync(folder);
    writeFileSync(join(folder, 'bomb.png'), blackPng(100_000, 1));
    const out = join(folder, 'vectors.npy');
    const { stdout, stderr, code } = await runCli(
      ['embed', join(folder, 'bomb.png'), '--out', out, '--model', MODEL, '--quiet'],
      env,
    );
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        /^whylesion: None of the 1 image\(s\) could be read \(.*bomb\.png is 100000x1.*\), so .*vectors\.npy was not written; check the files\.$/,
      ),
    ]);
    expect(readdirSync(folder).sort()).toEqual(['bomb.png']);
    // Shard 1/2 of [bomb.png, good.png] holds only good.png; shard 0/2 holds only the bomb and still writes its part.
    copyFileSync(GOOD_IMAGE, join(folder, 'good.png'));
    const part = join(folder, 'part0.npy');
    const shard = await runCli(['embed', folder, '--out', part, '--shard', '0/2', '--model', MODEL, '--quiet'], env);
    expect(shard.code).toBe(0);
    expect(JSON.parse(readFileSync(`${part}.meta.json`, 'utf8'))).toMatchObject({
      rows: 0,
      files: [],
      skipped: [{ file: join(folder, 'bomb.png') }],
    });
  });

  it('--max-image-pixels is a CLI option: a low limit skips an image the default takes', async () => {
    const low = await runCli(['classify', GOOD_IMAGE, ...labels, '--max-image-pixels', '1000'], env);
    expect(low.code).toBe(1);
    expect(low.stderr).toMatch(/above the limit of 1000 /);
    const bad = await runCli(['classify', GOOD_IMAGE, ...labels, '--max-image-pixels', 'lots'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--max-image-pixels lots is not a whole number/);
  });
});
