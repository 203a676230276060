import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, cpSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNpy } from '../src/io/npy.js';
import { CLI_ENV, KNOBO_URL, loadNpy, maxAbsDiff, runCli, TINY, TINY_IMAGES, TINY_MODEL } from './helpers.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
const MODEL = TINY_MODEL;
const IMAGES = TINY_IMAGES;
const env = CLI_ENV;
const cases = JSON.parse(readFileSync(new URL('cases.json', TINY), 'utf8')) as {
  images: string[];
  texts: string[];
  label_probs_first3_texts: number[][];
};
const imagePaths = cases.images.map((name) => join(IMAGES, name));
const expectedImages = loadNpy(new URL('expected/image_embeddings.npy', TINY)).data;
const expectedTexts = loadNpy(new URL('expected/text_embeddings.npy', TINY)).data;
const E = 32;
const row = (m: Float32Array, i: number): Float32Array => m.subarray(i * E, (i + 1) * E);
const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => Array.from(a).reduce((s, v, i) => s + v * b[i]!, 0);

function whylesion(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  return whylesionWith({}, ...args);
}

async function whylesionWith(
  extraEnv: Record<string, string>,
  ...args: string[]
): Promise<{ stdout: string; stderr: string; code: number }> {
  return runCli(args, { ...env, ...extraEnv });
}

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'whylesion-cli-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('whylesion CLI on the open_clip tiny checkpoint', () => {
  it('--version prints the package version', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(await whylesion('--version')).toEqual({ stdout: `${version}\n`, stderr: '', code: 0 });
  });

  it("classify --json gives open_clip's label probabilities (first three texts as labels)", async () => {
    const labels = cases.texts.slice(0, 3);
    const { stdout, code } = await whylesion(
      'classify',
      ...imagePaths,
      '--model',
      MODEL,
      '--json',
      ...labels.flatMap((l) => ['--label', l]),
    );
    expect(code).toBe(0);
    const result = JSON.parse(stdout) as { image: string; labels: string[]; probs: number[] }[];
    expect(result.map((r) => r.image)).toEqual(imagePaths);
    result.forEach((r, i) => {
      expect(r.labels).toEqual(labels);
      expect(maxAbsDiff(r.probs, cases.label_probs_first3_texts[i]!)).toBeLessThanOrEqual(1e-3);
    });
  });

  it("classify prints a readable table by default, and nothing on stderr (Dawn's limit warnings filtered out)", async () => {
    const { stdout, stderr, code } = await whylesion(
      'classify',
      imagePaths[0]!,
      '--model',
      MODEL,
      '--labels',
      'dark brown,bleeding',
    );
    expect(code).toBe(0);
    expect(stderr).toBe('');
    expect(stdout).toMatch(/lesion_rgb\.png\n {2}label +probability\n {2}\S.*%/);
  });

  it('zeroshot, classify and explain tables have a header and columns that line up for any sign and width', async () => {
    // On the tiny model every cosine is negative; class names of different lengths.
    const classes = ['nevus', 'melanoma', 'a much longer class name'];
    const table = await whylesion(
      'zeroshot',
      imagePaths[0]!,
      imagePaths[1]!,
      '--model',
      MODEL,
      '--labels',
      classes.join(','),
    );
    const json = JSON.parse(
      (
        await whylesion(
          'zeroshot',
          imagePaths[0]!,
          imagePaths[1]!,
          '--model',
          MODEL,
          '--labels',
          classes.join(','),
          '--json',
        )
      ).stdout,
    ) as { scores: Record<string, number> }[];
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    const headers = lines.map((l, i) => [l, i] as const).filter(([l]) => /^ {2}class +score +probability$/.test(l));
    expect(headers).toHaveLength(2);
    for (const [b, [header, at]] of headers.entries()) {
      const scoreEnd = header.indexOf('score') + 'score'.length,
        probabilityEnd = header.length;
      const rows = lines.slice(at + 1, at + 1 + classes.length);
      expect(rows.some((r) => r.includes('-'))).toBe(true); // a negative score is in there
      for (const row of rows) {
        const name = classes.find((c) => row.startsWith(`  ${c} `))!;
        // each number ends exactly under the end of its header word
        expect(Number(row.slice(0, scoreEnd).trim().split(/\s+/).pop())).toBeCloseTo(json[b]!.scores[name]!, 4);
        expect(row.length).toBe(probabilityEnd);
        expect(row.slice(0, scoreEnd)).toMatch(/\d$/);
        expect(row[scoreEnd]).toBe(' ');
      }
    }
    const classified = (
      await whylesion('classify', imagePaths[0]!, '--model', MODEL, '--labels', 'dark brown,bleeding')
    ).stdout.split('\n');
    expect(classified[1]).toMatch(/^ {2}label +probability$/);
    expect(classified[2]!.indexOf('%') + 1).toBe(classified[1]!.length);
    const explained = (await whylesion('explain', imagePaths[0]!, '--model', MODEL, '--top', '2')).stdout.split('\n');
    expect(explained[1]).toMatch(/^ {2}rank +similarity +concept$/);
    expect(
      explained[2]!.indexOf(explained[2]!.trim().split(/\s+/)[1]!) + explained[2]!.trim().split(/\s+/)[1]!.length,
    ).toBe(explained[1]!.indexOf('similarity') + 'similarity'.length);
  });

  it("embed --image/--text --json matches open_clip's normalized embeddings; --raw does not normalize", async () => {
    const { stdout } = await whylesion(
      'embed',
      '--model',
      MODEL,
      '--json',
      '--image',
      imagePaths[0]!,
      '--image',
      imagePaths[2]!,
      '--text',
      cases.texts[0]!,
      '--text',
      cases.texts[4]!,
    );
    const out = JSON.parse(stdout) as { image: number[][]; text: number[][] };
    expect(maxAbsDiff(out.image[0]!, row(expectedImages, 0))).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(out.image[1]!, row(expectedImages, 2))).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(out.text[0]!, row(expectedTexts, 0))).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(out.text[1]!, row(expectedTexts, 4))).toBeLessThanOrEqual(1e-5);
    const raw = JSON.parse(
      (
        await whylesion(
          'embed',
          '--model',
          MODEL,
          '--json',
          '--raw',
          '--pixels',
          fileURLToPath(new URL('expected/pixels224_lesion_rgb.npy', TINY)),
        )
      ).stdout,
    ) as { image: number[][] };
    expect(
      maxAbsDiff(raw.image[0]!, row(loadNpy(new URL('expected/image_embeddings_raw.npy', TINY)).data, 0)),
    ).toBeLessThan(2e-5);
  });

  it('zeroshot scores classes by mean cosine over their prompts', async () => {
    const classes = {
      browns: [cases.texts[0], cases.texts[3]],
      blood: [cases.texts[1]],
      shapes: [cases.texts[2], cases.texts[4], cases.texts[5]],
    };
    const file = join(work, 'classes.json');
    writeFileSync(file, JSON.stringify(classes));
    const { stdout } = await whylesion(
      'zeroshot',
      imagePaths[0]!,
      imagePaths[1]!,
      '--classes',
      file,
      '--model',
      MODEL,
      '--json',
    );
    const result = JSON.parse(stdout) as { image: string; prediction: string; scores: Record<string, number> }[];
    const index = { browns: [0, 3], blood: [1], shapes: [2, 4, 5] };
    result.forEach((r, i) => {
      const want = Object.fromEntries(
        Object.entries(index).map(([c, ids]) => [
          c,
          ids.reduce((s, t) => s + dot(row(expectedImages, i), row(expectedTexts, t)), 0) / ids.length,
        ]),
      );
      for (const c of Object.keys(classes)) expect(Math.abs(r.scores[c]! - want[c]!)).toBeLessThan(1e-5);
      expect(r.prediction).toBe(Object.keys(want).reduce((a, b) => (want[b]! > want[a]! ? b : a)));
    });
  });

  it('explain ranks concepts by similarity', async () => {
    const file = join(work, 'concepts.txt');
    writeFileSync(file, cases.texts.slice(0, 6).join('\n'));
    const { stdout } = await whylesion(
      'explain',
      imagePaths[3]!,
      '--concepts',
      file,
      '--top',
      '3',
      '--model',
      MODEL,
      '--json',
    );
    const [result] = JSON.parse(stdout) as { concepts: { concept: string; similarity: number }[] }[];
    if (result === undefined) throw new Error('missing result');
    const want = cases.texts
      .slice(0, 6)
      .map((concept, t) => ({ concept, similarity: dot(row(expectedImages, 3), row(expectedTexts, t)) }))
      .sort((a, b) => b.similarity - a.similarity)
      .slice(0, 3);
    expect(result.concepts.map((c) => c.concept)).toEqual(want.map((c) => c.concept));
    result.concepts.forEach((c, i) => {
      expect(Math.abs(c.similarity - want[i]!.similarity)).toBeLessThan(1e-5);
    });
  });

  it('explain reads the KnoBo bottleneck by name from WHYLESION_KNOBO_DIR', async () => {
    const knobo = fileURLToPath(KNOBO_URL);
    const { stdout, code } = await run(
      'node',
      [CLI, 'explain', imagePaths[0]!, '--concepts', 'StatPearls', '--top', '5', '--model', MODEL, '--json'],
      { env: { ...env, WHYLESION_KNOBO_DIR: knobo } },
    ).then((r) => ({ ...r, code: 0 }));
    expect(code).toBe(0);
    const questions = readFileSync(join(knobo, 'skin_StatPearls.txt'), 'utf8').split('\n').filter(Boolean);
    const [result] = JSON.parse(stdout) as { concepts: { concept: string; similarity: number }[] }[];
    if (result === undefined) throw new Error('missing result');
    expect(result.concepts).toHaveLength(5);
    for (const c of result.concepts) expect(questions).toContain(c.concept);
    const sims = result.concepts.map((c) => c.similarity);
    expect([...sims].sort((a, b) => b - a)).toEqual(sims);
  });

  it('embed DIR killed mid-run then --resume writes the same file as an uninterrupted run', async () => {
    const corpus = join(work, 'corpus');
    for (let i = 0; i < 4; i++)
      for (const name of cases.images) cpSync(join(IMAGES, name), join(corpus, `set${i}`, name));
    writeFileSync(join(corpus, 'set1', 'broken.png'), 'not an image');
    const whole = join(work, 'whole.npy'),
      resumed = join(work, 'resumed.npy');
    expect((await whylesion('embed', corpus, '--out', whole, '--batch', '3', '--model', MODEL)).code).toBe(0);

    const killed = await run('node', [CLI, 'embed', corpus, '--out', resumed, '--batch', '3', '--model', MODEL], {
      env: { ...env, WHYLESION_FAULT_KILL_AFTER_BATCHES: '2' },
    }).catch((e: { signal?: string }) => e);
    expect((killed as { signal?: string }).signal).toBe('SIGKILL');
    expect(existsSync(resumed)).toBe(false); // nothing half-written at the destination
    expect(readdirSync(work).some((f) => f === 'resumed.npy.partial')).toBe(true);
    const refused = await whylesion('embed', corpus, '--out', resumed, '--batch', '3', '--model', MODEL);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/--resume/);
    const otherSettings = await whylesion(
      'embed',
      corpus,
      '--out',
      resumed,
      '--batch',
      '3',
      '--model',
      MODEL,
      '--resume',
      '--raw',
    );
    expect(otherSettings.code).toBe(1);
    expect(otherSettings.stderr).toMatch(/made with other settings/);
    const done = await whylesion('embed', corpus, '--out', resumed, '--batch', '3', '--model', MODEL, '--resume');
    expect(done.code).toBe(0);
    expect(done.stderr).toMatch(/Embedded 16 image\(s\) into .*; skipped 1 unreadable:\n {2}\S*broken\.png/);
    expect(readFileSync(resumed)).toEqual(readFileSync(whole));
    expect(readFileSync(`${resumed}.meta.json`, 'utf8')).toEqual(readFileSync(`${whole}.meta.json`, 'utf8'));
    const vectors = readNpy(readFileSync(whole));
    expect(vectors.shape).toEqual([16, E]);
    const { files } = JSON.parse(readFileSync(`${whole}.meta.json`, 'utf8')) as { files: string[] };
    expect(files).toHaveLength(16);
    files.forEach((f, i) => {
      const k = cases.images.indexOf(f.split('/').pop()!);
      expect(
        maxAbsDiff((vectors.data as Float32Array).subarray(i * E, (i + 1) * E), row(expectedImages, k)),
      ).toBeLessThanOrEqual(1e-5);
    });
  });

  it('embed --shard i/n splits a corpus for job arrays; .jsonl rows name their files', async () => {
    const corpus = join(work, 'shards');
    for (let i = 0; i < 2; i++)
      for (const name of cases.images) cpSync(join(IMAGES, name), join(corpus, `d${i}`, name));
    const parts = [0, 1, 2].map((i) => join(work, `part${i}.jsonl`));
    for (const [i, out] of parts.entries()) {
      expect(
        (
          await whylesion(
            'embed',
            `${corpus}/**/*.png`,
            `${corpus}/**/*.jpg`,
            '--out',
            out,
            '--shard',
            `${i}/3`,
            '--model',
            MODEL,
          )
        ).code,
      ).toBe(0);
    }
    const rows = parts.map((p) =>
      readFileSync(p, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { file: string; embedding: number[] }),
    );
    const all = rows
      .flat()
      .map((r) => r.file)
      .sort();
    expect(all).toHaveLength(8); // every file exactly once over the shards
    expect(new Set(all).size).toBe(8);
    expect(rows.map((r) => r.length)).toEqual([3, 3, 2]);
    for (const r of rows.flat()) {
      const k = cases.images.indexOf(r.file.split('/').pop()!);
      expect(maxAbsDiff(r.embedding, row(expectedImages, k))).toBeLessThanOrEqual(1e-5);
    }
    expect(
      (await whylesion('embed', corpus, '--out', join(work, 'x.npy'), '--shard', '3/3', '--model', MODEL)).stderr,
    ).toMatch(/--shard 3\/3 must be i\/n/);
  });

  it('info reports the adapter, its limits and the model; bench --profile times every kernel', async () => {
    const info = JSON.parse((await whylesion('info', '--model', MODEL, '--json')).stdout) as {
      features: string[];
      limits: { maxStorageBufferBindingSize: number };
      model: { tensors: number; config: { embedDim: number } };
    };
    expect(info.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 << 20);
    expect(info.model.tensors).toBe(62);
    expect(info.model.config.embedDim).toBe(E);
    // the family it describes is the one a load would run: --kernels, else $WHYLESION_KERNELS
    const forced = JSON.parse((await whylesion('info', '--kernels', 'portable', '--json')).stdout) as {
      kernelFamily: string;
      kernelTuning: { rule: string };
    };
    expect(forced).toMatchObject({ kernelFamily: 'portable', kernelTuning: { rule: 'block' } });
    const fromEnv = JSON.parse((await whylesionWith({ WHYLESION_KERNELS: 'portable' }, 'info', '--json')).stdout) as {
      kernelFamily: string;
    };
    expect(fromEnv.kernelFamily).toBe('portable');
    const unknown = await whylesion('info', '--kernels', 'fastest');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/Kernel family 'fastest' is not one of auto, cpu-subgroup, gpu, portable/);
    const benchOut = (await whylesion('bench', '--model', MODEL, '--iters', '1', '--profile', '--json')).stdout;
    expect(benchOut.trim().split('\n')).toHaveLength(1);
    const bench = JSON.parse(benchOut) as {
      image_ms_per_batch: number;
      text_ms_per_batch: number;
      batch: number;
      load_ms: number;
      cold_ms: number;
      adapter: { description: string };
      profile?: { clock: string; image: { label: string; kernel: string; ms: number }[]; text: { label: string }[] };
    };
    expect(bench.batch).toBe(1);
    for (const ms of [bench.image_ms_per_batch, bench.text_ms_per_batch, bench.load_ms, bench.cold_ms])
      expect(ms).toBeGreaterThan(0);
    expect(typeof bench.adapter.description).toBe('string');
    // timestamp queries where the adapter has them, else one submit per dispatch on the wall clock
    expect(bench.profile!.clock).toBe(
      info.features.includes('timestamp-query') ? 'timestamps' : 'wall clock per submit',
    );
    const labels = bench.profile!.image.map((t) => t.label);
    expect(labels).toContain('vision.block00.attn');
    expect(labels).toContain('vision.proj');
    expect(bench.profile!.image.every((t) => t.ms >= 0)).toBe(true);
    expect(bench.profile!.text.map((t) => t.label)).toContain('text.ln_final');
  });

  it("tune measures the matmul kernels on the model's shapes and saves the fastest; later loads use them", async () => {
    const file = join(work, 'kernel-tuning.json');
    const tuned = await whylesionWith(
      { WHYLESION_TUNING_FILE: file },
      'tune',
      '--model',
      MODEL,
      '--runs',
      '1',
      '--json',
    );
    expect(tuned.code, tuned.stderr).toBe(0);
    const { results } = JSON.parse(tuned.stdout) as {
      file: string;
      results: { key: string; choice: string; candidates: { variant: string; ms?: number }[] }[];
    };
    expect(results.length).toBeGreaterThan(0);
    const saved = JSON.parse(readFileSync(file, 'utf8')) as {
      devices: Record<string, { choices: Record<string, string> }>;
    };
    const [choices] = Object.values(saved.devices).map((d) => d.choices);
    if (choices === undefined) throw new Error('missing choices');
    for (const r of results) {
      const timed = r.candidates.filter((c) => c.ms !== undefined);
      expect(timed.length).toBeGreaterThanOrEqual(2);
      // the fastest, or the built-in choice when that is within 10 % of it
      const fastest = timed.reduce((a, b) => (b.ms! < a.ms! ? b : a));
      const chosen = timed.find((c) => c.variant === r.choice)!;
      expect(chosen.ms!).toBeLessThanOrEqual(fastest.ms! / 0.9);
      expect(choices[r.key]).toBe(r.choice);
    }
    const adapter = JSON.parse((await whylesion('info', '--json')).stdout) as {
      features: string[];
      kernelFamily: string;
      subgroupSize: { min: number; max: number } | null;
    };
    if (adapter.features.includes('shader-f16')) {
      // f16 weights are packed for the one packed kernel where 8-lane subgroup kernels run: said so, nothing
      // tuned; at 16 lanes they keep [N, K] and are tuned like f32 ones
      const packs = adapter.kernelFamily === 'cpu-subgroup' && adapter.subgroupSize?.max !== 16;
      const f16File = join(work, 'kernel-tuning-f16.json');
      const f16 = await whylesionWith(
        { WHYLESION_TUNING_FILE: f16File },
        'tune',
        '--model',
        MODEL,
        '--dtype',
        'f16',
        '--runs',
        '1',
      );
      if (packs) {
        expect(f16.code).toBe(1);
        expect(f16.stderr).toMatch(
          /whylesion: With f16 weights every matmul on this adapter runs the one packed f16 kernel/,
        );
      } else {
        expect(f16.code, f16.stderr).toBe(0);
        const f16Saved = JSON.parse(readFileSync(f16File, 'utf8')) as {
          devices: Record<string, { choices: Record<string, string> }>;
        };
        const keys = Object.values(f16Saved.devices).flatMap((d) => Object.keys(d.choices));
        expect(keys.length).toBeGreaterThan(0);
        expect(keys.every((k) => k.startsWith('matmul:f16:'))).toBe(true);
      }
    }
    const unknown = await whylesionWith(
      { WHYLESION_KERNEL_TUNING: 'fastest' },
      'embed',
      '--text',
      'x',
      '--model',
      MODEL,
    );
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/whylesion: Kernel tuning 'fastest' is not 'cached' or 'rules'/);
    // an unwritable cache location fails at once, in one sentence, before any tuning
    writeFileSync(join(work, 'not-a-folder'), 'x');
    const refused = await whylesionWith(
      { WHYLESION_TUNING_FILE: join(work, 'not-a-folder', 't.json') },
      'tune',
      '--model',
      MODEL,
    );
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/whylesion: cannot mkdir .*not-a-folder: it already exists as a file/);
    const info = JSON.parse((await whylesionWith({ WHYLESION_TUNING_FILE: file }, 'info', '--json')).stdout) as {
      kernelTuning: { file: string; tunedShapes: number };
    };
    expect(info.kernelTuning).toMatchObject({ file, tunedShapes: Object.keys(choices).length });
    // later loads apply the saved choices: set every one to a kernel the adapter's rule does not pick
    // (the workgroup-tiled one, or on hardware GPUs, whose rule it is, the 4×4 block) and see it run, still matching open_clip
    const [device] = Object.keys(saved.devices);
    if (device === undefined) throw new Error('missing device');
    const [variant, kernel] = adapter.kernelFamily === 'gpu' ? ['block', 'matmul'] : ['tiled', 'matmul_tiled'];
    const forced = {
      format: 1,
      devices: {
        [device]: {
          ...saved.devices[device],
          choices: Object.fromEntries(Object.keys(choices).map((k) => [k, variant])),
        },
      },
    };
    writeFileSync(file, JSON.stringify(forced));
    const profiled = await whylesionWith(
      { WHYLESION_TUNING_FILE: file },
      'bench',
      '--model',
      MODEL,
      '--iters',
      '1',
      '--profile',
      '--json',
    );
    const { profile } = JSON.parse(profiled.stdout) as { profile?: { image: { kernel: string }[] } };
    if (profile) expect(profile.image.map((t) => t.kernel)).toContain(kernel);
    const { stdout } = await whylesionWith(
      { WHYLESION_TUNING_FILE: file },
      'embed',
      '--image',
      imagePaths[0]!,
      '--text',
      cases.texts[0]!,
      '--model',
      MODEL,
      '--json',
    );
    const out = JSON.parse(stdout) as { image: number[][]; text: number[][] };
    expect(maxAbsDiff(out.image[0]!, row(expectedImages, 0))).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(out.text[0]!, row(expectedTexts, 0))).toBeLessThanOrEqual(1e-5);
  }, 300_000); // compiles every candidate kernel (more at 512 bits), slow on a busy 2-core lavapipe

  it('user errors: one sentence on stderr, exit 1, no stack trace', async () => {
    writeFileSync(join(work, 'afile'), 'a file where a folder is expected');
    const cases: [string[], RegExp][] = [
      [['classify', imagePaths[0]!, '--model', MODEL], /needs labels/],
      [
        ['classify', join(work, 'missing.png'), '--labels', 'a', '--model', MODEL],
        /missing\.png does not exist; pass image folders, files or globs/,
      ],
      [['embed', '--text', 'x', '--model', join(work, 'no-such-model')], /does not exist/],
      [
        ['zeroshot', imagePaths[0]!, '--classes', join(work, 'none.json'), '--model', MODEL],
        /Cannot read .*none\.json/,
      ],
      [['frobnicate'], /Unknown command/],
      [
        ['embed', '--image', imagePaths[0]!, '--out', join(work, 'x.npy'), '--model', MODEL],
        /--out apply only to embedding a folder/,
      ],
      [
        ['embed', IMAGES, '--out', join(work, 'y.npy'), '--text', 'hi', '--model', MODEL],
        /--text cannot be combined with a folder/,
      ],
      [
        ['embed', IMAGES, '--out', join(work, 'afile', 'z.npy'), '--model', MODEL],
        /Cannot write .*z\.npy\.partial \((ENOTDIR|EEXIST)\)/,
      ],
      [
        ['synth', '--config', 'ViT-B-32', '--out', join(work, 'afile', 'sub')],
        /cannot mkdir .*afile\/sub: a part of the path is a file/,
      ],
      [
        ['tokenize', '--context-length', '3000000000', 'a'],
        /--context-length 3000000000 is not a whole number from 2 to 1000000/,
      ],
      [
        ['classify', '--bogus'],
        /^whylesion: Unknown option --bogus for classify; see whylesion classify --help for the options\.$/,
      ],
      [
        ['classify', imagePaths[0]!, '--lables', 'a'],
        /^whylesion: Unknown option --lables for classify: did you mean --labels \(see whylesion classify --help\)\?$/,
      ],
      [
        ['classify', imagePaths[0]!, '--labels', 'a', '--format', 'xml', '--model', MODEL],
        /--format xml is not table, json, jsonl or csv/,
      ],
      [
        ['classify', imagePaths[0]!, '--labels', `@${join(work, 'no-labels.txt')}`, '--model', MODEL],
        /Cannot read the labels file .*no-labels\.txt/,
      ],
      [
        ['classify', imagePaths[0]!, '--labels', 'a', '--template', 'a photo', '--model', MODEL],
        /--template "a photo" has no \{\}/,
      ],
      [
        ['zeroshot', IMAGES, '--labels', 'a', '--classes', join(work, 'none.json'), '--model', MODEL],
        /either --classes FILE\.json or class names/,
      ],
      [
        ['explain', join(work, 'nothing-*.png'), '--model', MODEL],
        /No image files \(PNG, JPEG, GIF, BMP, TIFF or WebP\) found in .*nothing-\*\.png\./,
      ],
    ];
    for (const [args, message] of cases) {
      const { stderr, code } = await whylesion(...args);
      expect(code, args.join(' ')).toBe(1);
      const ours = stderr.split('\n').filter((l) => l.startsWith('whylesion:'));
      expect(ours, args.join(' ')).toHaveLength(1);
      expect(ours[0]).toMatch(message);
      expect(stderr).not.toMatch(/\n\s+at /);
    }
  });
});
