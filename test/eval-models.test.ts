/**
 * `whylesion eval DATASET --models A,B`: two tiny checkpoints of the same config and different weights (the fixture
 * and a `synth` copy with another seed), compared side by side, checked against `eval --model` run once per model,
 * with each model's identity against the files' own sha256, and the report's chart against the accuracies (and,
 * where Chromium is installed, laid out at 1200 and 600 px without overlaps; screenshots to test/output/).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Comparison, ModelRun } from '../src/eval/compare.js';
import type { ModeResult } from '../src/eval/evaluate.js';
import { CLI_ENV, runCli, sliceEvalDataset, TINY_MODEL } from './helpers.js';

const CHROMIUM = [process.env.WHYLESION_CHROMIUM, '/usr/bin/chromium-headless-shell', '/usr/bin/chromium'].find(
  (p) => p && existsSync(p),
);

interface EvalJson {
  dataset: string;
  classes: string[];
  results?: ModeResult[];
  skipped: { mode: string; reason: string }[];
  models: ModelRun[];
  comparison: Comparison;
}

const OUTPUT = fileURLToPath(new URL('output/', import.meta.url));

let work: string, dataset: string, cache: string, texts: string, other: string;
let env: NodeJS.ProcessEnv;
const whylesion = (...args: string[]) => runCli(args, env);
/** The CLI's error line (Dawn's warnings left out). */
const message = (stderr: string): string =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('whylesion:'))
    .join('\n');
/** The value, or a failed test naming what was missing (instead of an unchecked index read). */
function defined<T>(value: T | undefined, what = 'a value'): T {
  if (value === undefined) throw new Error(`expected ${what}, got undefined`);
  return value;
}
const sha256 = (path: string): string => `sha256:${createHash('sha256').update(readFileSync(path)).digest('hex')}`;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'whylesion-eval-models-'));
  cache = join(work, 'features');
  texts = join(work, 'texts');
  env = { ...CLI_ENV, WHYLESION_TEXT_CACHE: texts };
  dataset = sliceEvalDataset(join(work, 'lesions'), { train: 6, val: 4, test: 4 });
  // The fixture's config, other weights: `synth` with a seed of its own.
  other = join(work, 'tiny-seed-7');
  const made = await whylesion(
    'synth',
    '--config',
    join(TINY_MODEL, 'open_clip_config.json'),
    '--out',
    other,
    '--seed',
    '7',
  );
  expect(made.code, made.stderr).toBe(0);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('eval --models', () => {
  let single: [EvalJson, EvalJson];
  let compared: EvalJson;
  const report = () => join(work, 'models.html');
  const common = () => ['--cache', cache, '--epochs', '30', '--json'];

  it("equals eval --model run per model; the models share no cached rows; identities are the files' hashes", async () => {
    const first = await whylesion('eval', dataset, '--model', TINY_MODEL, ...common());
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain('28 embedded now, 0 from the cache');
    const both = await whylesion(
      'eval',
      dataset,
      '--models',
      `${TINY_MODEL},${other}`,
      ...common(),
      '--report',
      report(),
    );
    expect(both.code, both.stderr).toBe(0);
    // The fixture's rows come from the cache; the other model's are computed, not taken from the fixture's.
    expect(both.stderr).toContain(
      `with ${TINY_MODEL}: 2 classes; train 12, val 8, test 8 images (0 embedded now, 28 from the cache)`,
    );
    expect(both.stderr).toContain(
      `with ${other}: 2 classes; train 12, val 8, test 8 images (28 embedded now, 0 from the cache)`,
    );
    const second = await whylesion('eval', dataset, '--model', other, ...common());
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain('0 embedded now, 28 from the cache');
    single = [JSON.parse(first.stdout) as EvalJson, JSON.parse(second.stdout) as EvalJson];
    compared = JSON.parse(both.stdout) as EvalJson;

    // One feature file and one text file per model identity.
    expect(readdirSync(cache).filter((f) => f.endsWith('.f32rows'))).toHaveLength(2);
    const keys = readdirSync(cache)
      .filter((f) => f.endsWith('.json'))
      .map((f) => (JSON.parse(readFileSync(join(cache, f), 'utf8')) as { key: { model: string } }).key.model)
      .sort();
    const identityKeys = compared.models.map((m) => `${m.identity.weights} ${m.identity.config} ${m.identity.dtype}`);
    expect(keys).toEqual([...identityKeys].sort());
    expect(readdirSync(texts).filter((f) => f.endsWith('.f32rows'))).toHaveLength(2);

    expect(compared.results).toBeUndefined(); // top-level results only for one model
    expect(compared.models.map((m) => m.model)).toEqual([TINY_MODEL, other]);
    compared.models.forEach((run, i) => {
      const alone = defined(single[i]);
      expect(alone.models).toHaveLength(1);
      expect(alone.results).toEqual(defined(alone.models[0]).results);
      expect(run.results.map((r) => r.mode)).toEqual(['zeroshot', 'linear', 'concepts', 'knobo']);
      expect(run.results).toEqual(alone.results); // every mode, every number, as the separate run
      expect(run.identity).toEqual(defined(alone.models[0]).identity);
    });
    const [a, b] = compared.models;
    for (const [run, dir] of [
      [defined(a), TINY_MODEL],
      [defined(b), other],
    ] as const) {
      expect(run.identity.weights).toBe(sha256(join(dir, 'open_clip_model.safetensors')));
      expect(run.identity.config).toBe(sha256(join(dir, 'open_clip_config.json')));
      expect(run.identity.dtype).toBe('f32');
    }
    expect(defined(a).identity.weights).not.toBe(defined(b).identity.weights);

    expect(compared.comparison.modes).toEqual(['zeroshot', 'linear']);
    compared.comparison.rows.forEach((row, i) => {
      expect(row.model).toBe(defined(compared.models[i]).model);
      expect(row.identity).toEqual(defined(compared.models[i]).identity);
      for (const mode of ['zeroshot', 'linear'] as const) {
        const separate = defined(defined(single[i]).results?.find((r) => r.mode === mode));
        expect(row.accuracy[mode]).toEqual({
          in_domain: separate.val_acc,
          out_of_domain: separate.test_acc,
          average: (separate.val_acc + separate.test_acc) / 2,
        });
      }
    });
  });

  it('the table lists each model with its accuracies; the report charts them, a group per model', async () => {
    const table = await whylesion(
      'eval',
      dataset,
      '--models',
      `${TINY_MODEL},${other}`,
      '--cache',
      cache,
      '--epochs',
      '30',
    );
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.split('\n');
    expect(lines[0]).toMatch(/^\s+zero-shot\s+linear probe$/);
    expect(lines[1]).toMatch(
      /^model\s+weights\s+dtype\s+in-domain\s+out-of-domain\s+average\s+in-domain\s+out-of-domain\s+average$/,
    );
    compared.comparison.rows.forEach((row, i) => {
      const line = defined(lines[2 + i]);
      expect(line.startsWith(row.model)).toBe(true);
      expect(line).toContain(row.identity.weights.slice(0, 'sha256:'.length + 8));
      const numbers = line.trim().split(/\s+/).slice(-6).map(Number);
      const expected = (['zeroshot', 'linear'] as const).flatMap((m) => {
        const a = defined(row.accuracy[m]);
        return [a.in_domain, a.out_of_domain, a.average].map((v) => Number(v.toFixed(1)));
      });
      expect(numbers).toEqual(expected);
    });
    // Then each model's own table, headed by its name.
    expect(table.stdout).toContain(`\n== ${TINY_MODEL} (sha256:`);
    expect(table.stdout).toContain(`\n== ${other} (sha256:`);

    const html = readFileSync(report(), 'utf8');
    const chart = html.slice(html.indexOf('<svg'), html.indexOf('</svg>'));
    expect(chart).toContain('aria-label="accuracy per model"');
    const plot = Number(/data-plot-height="([\d.]+)"/.exec(chart)?.[1]);
    const bars = [
      ...chart.matchAll(
        /<rect class="bar" data-model="(\d)" data-mode="(\w+)" data-domain="(\w+)" [^>]*? height="([\d.]+)"/g,
      ),
    ];
    expect(new Set(bars.map((b) => b[1]))).toEqual(new Set(['0', '1'])); // a group per model
    expect(bars).toHaveLength(2 * 2 * 3);
    for (const [, model, mode, domain, height] of bars) {
      const accuracy = defined(defined(compared.comparison.rows[Number(model)]).accuracy[mode as 'zeroshot']);
      expect((Number(height) / plot) * 100).toBeCloseTo(accuracy[domain as 'in_domain'], 2);
    }
    for (const run of compared.models)
      expect(html).toContain(
        `weights ${run.identity.weights}<br>config ${run.identity.config}<br>dtype ${run.identity.dtype}`,
      );
  });

  it('refuses --model with --models, a repeated or missing model, and a model that does not load, writing nothing', async () => {
    const refused: [string[], RegExp][] = [
      [
        ['--model', TINY_MODEL, '--models', `${TINY_MODEL},${other}`],
        /^whylesion: --model and --models cannot be used together; list every model in --models A,B,C\.$/,
      ],
      [['--models', `${TINY_MODEL},${TINY_MODEL}`], /^whylesion: --models names .* twice; list each model once\.$/],
      [['--models', ' , '], /^whylesion: --models {2}, {2}names no model;/],
      [
        ['--models', `${TINY_MODEL},${join(work, 'nowhere')}`],
        /^whylesion: Model folder .*nowhere does not exist; pass a folder/,
      ],
    ];
    const never = join(work, 'never.html');
    for (const [args, expected] of refused) {
      const r = await whylesion('eval', dataset, ...args, '--cache', cache, '--report', never);
      expect(r.code, args.join(' ')).toBe(1);
      expect(message(r.stderr), args.join(' ')).toMatch(expected);
      expect(r.stderr, args.join(' ')).not.toContain('embedded now'); // refused before any model ran
    }
    // A folder that exists but holds no checkpoint: found when it loads, after the first model ran.
    const empty = join(work, 'empty-model');
    mkdirSync(empty);
    const r = await whylesion(
      'eval',
      dataset,
      '--models',
      `${TINY_MODEL},${empty}`,
      '--cache',
      cache,
      '--report',
      never,
      '--json',
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`with ${TINY_MODEL}: `);
    expect(message(r.stderr)).toMatch(
      new RegExp(
        `^whylesion: --models ${empty} \\(model 2 of 2\\) cannot be loaded, so nothing was compared: .*${empty}[^\\n]*$`,
      ),
    );
    expect(r.stdout).toBe('');
    expect(existsSync(never)).toBe(false);
  });

  it('the report at 1200 and 600 px: chart labels, bars and legend do not overlap, nothing wider than the window', async (ctx) => {
    if (!CHROMIUM) ctx.skip('no Chromium (install chromium-headless-shell or set WHYLESION_CHROMIUM)');
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: 'shell',
      args: ['--no-sandbox', '--disable-dev-shm-usage'],
    });
    try {
      const page = await browser.newPage();
      for (const width of [1200, 600]) {
        await page.setViewport({ width, height: 900 });
        await page.goto(`file://${report()}`);
        const layout = await page.evaluate(() => {
          const box = (e: Element) => {
            const r = e.getBoundingClientRect();
            return { left: r.left, right: r.right, top: r.top, bottom: r.bottom };
          };
          const chart = document.querySelector('figure.chart');
          if (!chart) throw new Error('the report has no chart');
          const labels = [...chart.querySelectorAll('svg text, .legend span')].map((e) => ({
            text: e.textContent ?? '',
            ...box(e),
          }));
          const bars = [...chart.querySelectorAll('rect.bar')].map(box);
          return {
            labels,
            bars,
            scrollWidth: document.documentElement.scrollWidth,
            innerWidth: window.innerWidth,
          };
        });
        const overlap = (a: (typeof layout.bars)[number], b: (typeof layout.bars)[number]) =>
          a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
        expect(layout.scrollWidth, `${width} px`).toBeLessThanOrEqual(layout.innerWidth);
        expect(layout.bars).toHaveLength(12);
        for (const [i, a] of layout.labels.entries()) {
          for (const b of layout.labels.slice(i + 1))
            expect(overlap(a, b), `${width} px: '${a.text}' and '${b.text}'`).toBe(false);
          for (const bar of layout.bars) expect(overlap(a, bar), `${width} px: '${a.text}' on a bar`).toBe(false);
        }
        // For a person to look at: test/output/eval-models-1200.png and -600.png.
        mkdirSync(OUTPUT, { recursive: true });
        await page.screenshot({ path: join(OUTPUT, `eval-models-${width}.png`) as `${string}.png`, fullPage: true });
      }
    } finally {
      await browser.close();
    }
  });
});
