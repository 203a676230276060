import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ENV, loadNpy, runCli, TINY, TINY_IMAGES, TINY_MODEL } from './helpers.js';

/**
 * classify / zeroshot / explain over folders and globs, checked against open_clip's own embeddings of the
 * tiny checkpoint (fixtures/openclip-tiny) with the scores, ensembles and softmax written out here.
 */
const CLI = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
const MODEL = TINY_MODEL;
const IMAGES = TINY_IMAGES;
const env = CLI_ENV;
const cases = JSON.parse(readFileSync(new URL('cases.json', TINY), 'utf8')) as {
  images: string[];
  texts: string[];
  label_probs_first3_texts: number[][];
};
const expectedImages = loadNpy(new URL('expected/image_embeddings.npy', TINY)).data;
const expectedTexts = loadNpy(new URL('expected/text_embeddings.npy', TINY)).data;
const E = 32;
const imageRow = (file: string): Float32Array => {
  const i = cases.images.indexOf(file.split('/').pop()!);
  if (i < 0) throw new Error(`${file} is not a fixture image`);
  return expectedImages.subarray(i * E, (i + 1) * E);
};
const textRow = (t: number): Float32Array => expectedTexts.subarray(t * E, (t + 1) * E);
const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => Array.from(a).reduce((s, v, i) => s + v * b[i]!, 0);
const softmax = (xs: number[]): number[] => {
  const e = xs.map((x) => Math.exp(x - Math.max(...xs)));
  return e.map((v) => v / e.reduce((a, b) => a + b, 0));
};
// open_clip's logit scale, read back from the probabilities it computed: ln(p1/p0) = scale · (cos1 − cos0).
const [p0, p1] = cases.label_probs_first3_texts[0] ?? [];
if (p0 === undefined || p1 === undefined) throw new Error('cases.json has no label probabilities');
const LOGIT_SCALE =
  Math.log(p1 / p0) / (dot(imageRow(cases.images[0]!), textRow(1)) - dot(imageRow(cases.images[0]!), textRow(0)));

async function whylesion(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  return runCli(args, env);
}

/** RFC 4180: quoted fields may hold commas, doubled quotes and newlines. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [],
    field = '',
    quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  return rows;
}

const progressLines = (stderr: string, verb: string): string[] =>
  stderr.split('\n').filter((l) => new RegExp(`^${verb} [\\d,]+/[\\d,]+ images`).test(l));

let work: string, corpus: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'whylesion-folders-'));
  corpus = join(work, 'corpus');
  for (const set of ['set0', 'set1'])
    for (const name of cases.images) cpSync(join(IMAGES, name), join(corpus, set, name));
  writeFileSync(join(corpus, 'set1', 'broken.png'), 'not an image');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('classify, zeroshot and explain over folders', () => {
  it("classify DIR --labels @file --format jsonl: open_clip's probabilities per image, a corrupt file skipped with a summary, progress lines in a redirected stderr", async () => {
    const labels = cases.texts.slice(0, 3);
    writeFileSync(join(work, 'labels.txt'), `${labels.join('\n')}\n\n`);
    const { stdout, stderr, code } = await whylesion(
      'classify',
      corpus,
      '--labels',
      `@${join(work, 'labels.txt')}`,
      '--format',
      'jsonl',
      '--batch',
      '3',
      '--model',
      MODEL,
    );
    expect(code, stderr).toBe(0);
    const rows = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { image: string; labels: string[]; probs: number[] });
    expect(rows.map((r) => r.image)).toEqual(
      ['set0', 'set1'].flatMap((set) => [...cases.images].sort().map((n) => join(corpus, set, n))),
    );
    for (const r of rows) {
      expect(r.labels).toEqual(labels);
      const want = softmax(labels.map((_, t) => LOGIT_SCALE * dot(imageRow(r.image), textRow(t))));
      r.probs.forEach((p, t) => {
        expect(Math.abs(p - want[t]!)).toBeLessThanOrEqual(1e-3);
      });
    }
    // 9 files in batches of 3: a line after the first batch even though stderr is not a terminal
    expect(progressLines(stderr, 'classified')[0]).toMatch(
      /^classified 3\/9 images \(33\.3%\), [\d.]+ images\/s, ETA \d+ s/,
    );
    expect(stderr).toMatch(/\nClassified 8 images; skipped 1 unreadable:\n {2}\S*set1\/broken\.png is not a PNG, JPEG/);
  });

  it('classify GLOB --format csv --top 2 --strict --quiet: ranked rows, no progress, exit 1 because a file was skipped', async () => {
    const labels = cases.texts.slice(0, 3);
    const { stdout, stderr, code } = await whylesion(
      'classify',
      `${corpus}/**/*.png`,
      ...labels.flatMap((l) => ['--label', l]),
      '--format',
      'csv',
      '--top',
      '2',
      '--batch',
      '2',
      '--strict',
      '--quiet',
      '--model',
      MODEL,
    );
    expect(code).toBe(1);
    const [header, ...rows] = parseCsv(stdout);
    expect(header).toEqual(['image', 'rank', 'label', 'probability']);
    const pngs = cases.images.filter((n) => n.endsWith('.png')).length;
    expect(rows).toHaveLength(2 * 2 * pngs); // both sets, top 2 each; broken.png has no row
    for (const [image, rank, label, probability] of rows) {
      if (image === undefined) throw new Error('a csv row without an image');
      const probs = softmax(labels.map((_, t) => LOGIT_SCALE * dot(imageRow(image), textRow(t))));
      const order = labels.map((_, t) => t).sort((a, b) => probs[b]! - probs[a]!);
      expect(label).toBe(labels[order[Number(rank) - 1]!]);
      expect(Math.abs(Number(probability) - probs[order[Number(rank) - 1]!]!)).toBeLessThanOrEqual(1e-3);
    }
    expect(progressLines(stderr, 'classified')).toEqual([]);
    expect(stderr).toMatch(/^Classified 6 images; skipped 1 unreadable:\n {2}\S*broken\.png/); // skipped files are listed even so
    expect(stderr).toMatch(
      /\nwhylesion: 1 file\(s\) could not be read \(listed above\), and --strict makes that an error\.\n/,
    );
  });

  it('classify | head: when the reader closes stdout the run stops quietly with exit 0', async () => {
    const child = spawn(
      'node',
      [CLI, 'classify', corpus, '--labels', 'a,b', '--format', 'jsonl', '--batch', '1', '--model', MODEL],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '',
      stdout = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // read the first row, then close the pipe like `head -1`; later batches find no reader
    for await (const chunk of child.stdout) {
      stdout += (chunk as Buffer).toString();
      if (stdout.includes('\n')) break;
    }
    const [code] = (await once(child, 'close')) as [number];
    expect(JSON.parse(stdout.split('\n')[0]!)).toMatchObject({ labels: ['a', 'b'] });
    expect(code, stderr).toBe(0);
    expect(stderr).not.toMatch(/internal error|EPIPE/);
    expect(stderr).not.toMatch(/Classified \d+ images/); // stopped early: no closing count
  });

  it('classify --template T encodes T with each label and reports the labels; one image (one batch) prints nothing on stderr', async () => {
    const image = join(IMAGES, cases.images[0]!);
    const templated = await whylesion(
      'classify',
      image,
      '--labels',
      'melanoma,nevus',
      '--template',
      'a dermoscopic image of {}',
      '--json',
      '--model',
      MODEL,
    );
    const spelled = await whylesion(
      'classify',
      image,
      '--label',
      'a dermoscopic image of melanoma',
      '--label',
      'a dermoscopic image of nevus',
      '--format',
      'json',
      '--model',
      MODEL,
    );
    expect(templated.code, templated.stderr).toBe(0);
    const [t] = JSON.parse(templated.stdout) as { labels: string[]; probs: number[] }[];
    if (t === undefined) throw new Error('missing t');
    const [s] = JSON.parse(spelled.stdout) as { labels: string[]; probs: number[] }[];
    if (s === undefined) throw new Error('missing s');
    expect(t.labels).toEqual(['melanoma', 'nevus']);
    t.probs.forEach((p, i) => {
      expect(Math.abs(p - s.probs[i]!)).toBeLessThanOrEqual(1e-6);
    });
    expect(templated.stderr).toBe('');
    expect(spelled.stderr).toBe('');
  });

  it("zeroshot --ensemble score (the model card's) and embedding (open_clip's), each with softmax probabilities", async () => {
    const index = { browns: [0, 3], blood: [1], shapes: [2, 4, 5] };
    const file = join(work, 'classes.json');
    writeFileSync(
      file,
      JSON.stringify(Object.fromEntries(Object.entries(index).map(([c, ids]) => [c, ids.map((t) => cases.texts[t])]))),
    );
    const unit = (v: number[]): number[] => v.map((x) => x / Math.sqrt(dot(v, v)));
    const formulas = {
      score: (image: Float32Array, ids: number[]) => ids.reduce((s, t) => s + dot(image, textRow(t)), 0) / ids.length,
      embedding: (image: Float32Array, ids: number[]) =>
        dot(image, unit(Array.from({ length: E }, (_, k) => ids.reduce((s, t) => s + textRow(t)[k]!, 0) / ids.length))),
    };
    for (const [ensemble, formula] of Object.entries(formulas)) {
      const { stdout, stderr, code } = await whylesion(
        'zeroshot',
        join(corpus, 'set0'),
        '--classes',
        file,
        '--ensemble',
        ensemble,
        '--format',
        'jsonl',
        '--model',
        MODEL,
      );
      expect(code, stderr).toBe(0);
      const rows = stdout
        .trim()
        .split('\n')
        .map(
          (l) =>
            JSON.parse(l) as {
              image: string;
              prediction: string;
              scores: Record<string, number>;
              probs: Record<string, number>;
            },
        );
      expect(rows).toHaveLength(cases.images.length);
      for (const r of rows) {
        const names = Object.keys(index) as (keyof typeof index)[];
        const scores = names.map((c) => formula(imageRow(r.image), index[c]));
        const probs = softmax(scores.map((s) => LOGIT_SCALE * s));
        names.forEach((c, k) => {
          expect(Math.abs(r.scores[c]! - scores[k]!), `${ensemble} ${c}`).toBeLessThan(1e-5);
          expect(Math.abs(r.probs[c]! - probs[k]!), `${ensemble} ${c}`).toBeLessThan(1e-3);
        });
        expect(r.prediction).toBe(names[scores.indexOf(Math.max(...scores))]);
      }
    }
    const bad = await whylesion(
      'zeroshot',
      join(corpus, 'set0'),
      '--classes',
      file,
      '--ensemble',
      'median',
      '--model',
      MODEL,
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/whylesion: --ensemble median is not score .* or embedding/);
  });

  it("zeroshot --labels with --template: each class's prompts are every template filled with its name", async () => {
    const image = join(IMAGES, cases.images[1]!);
    const { stdout, stderr, code } = await whylesion(
      'zeroshot',
      image,
      '--labels',
      'melanoma,shape',
      '--template',
      'a dermoscopic image of {}',
      '--template',
      'irregular {}',
      '--json',
      '--model',
      MODEL,
    );
    expect(code, stderr).toBe(0);
    const [r] = JSON.parse(stdout) as { scores: { melanoma: number; shape: number } }[];
    if (r === undefined) throw new Error('missing r');
    const prompts = [
      'a dermoscopic image of melanoma',
      'irregular melanoma',
      'a dermoscopic image of shape',
      'irregular shape',
    ];
    const embedded = await whylesion('embed', ...prompts.flatMap((p) => ['--text', p]), '--json', '--model', MODEL);
    const texts = (JSON.parse(embedded.stdout) as { text: number[][] }).text;
    // two of the four are among open_clip's texts: the embeddings the mean is taken over are open_clip's
    expect(Math.abs(dot(texts[0]!, textRow(3)) - 1)).toBeLessThan(1e-5);
    expect(Math.abs(dot(texts[3]!, textRow(2)) - 1)).toBeLessThan(1e-5);
    const cos = texts.map((t) => dot(imageRow(image), t));
    expect(Math.abs(r.scores.melanoma - (cos[0]! + cos[1]!) / 2)).toBeLessThan(1e-5);
    expect(Math.abs(r.scores.shape - (cos[2]! + cos[3]!) / 2)).toBeLessThan(1e-5);
  });

  it('explain DIR --format csv --top 2: concepts ranked by cosine, quoted where they hold commas', async () => {
    const concepts = cases.texts.slice(0, 6);
    const file = join(work, 'concepts.txt');
    writeFileSync(file, concepts.join('\n'));
    const { stdout, stderr, code } = await whylesion(
      'explain',
      join(corpus, 'set0'),
      '--concepts',
      file,
      '--top',
      '2',
      '--format',
      'csv',
      '--batch',
      '3',
      '--model',
      MODEL,
    );
    expect(code, stderr).toBe(0);
    const [header, ...rows] = parseCsv(stdout);
    expect(header).toEqual(['image', 'rank', 'concept', 'similarity']);
    expect(rows).toHaveLength(2 * cases.images.length);
    for (const [image, rank, concept, similarity] of rows) {
      if (image === undefined) throw new Error('a csv row without an image');
      const want = concepts.map((c, t) => ({ c, s: dot(imageRow(image), textRow(t)) })).sort((a, b) => b.s - a.s)[
        Number(rank) - 1
      ]!;
      expect(concept).toBe(want.c);
      expect(Math.abs(Number(similarity) - want.s)).toBeLessThan(1e-5);
    }
    expect(progressLines(stderr, 'explained')[0]).toMatch(/^explained 3\/4 images/);
    expect(stderr).toMatch(/\nExplained 4 images\.\n$/);
  });
});
