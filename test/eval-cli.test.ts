import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSplitPickle } from '../src/eval/splits.js';
import { CLI_ENV, EVAL_SYNTH, runCli, sliceEvalDataset, TINY_MODEL } from './helpers.js';

const MODEL = TINY_MODEL;
const env = CLI_ENV;

async function whylesion(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  return runCli(args, env);
}

/** The last line of stderr without Dawn's adapter warnings. */
const message = (stderr: string): string =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('whylesion:'))
    .join('\n');

let work: string, dataset: string, cache: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'whylesion-eval-cli-'));
  cache = join(work, 'cache');
  // A small slice of the synthetic dataset: two classes, 6 train / 4 val / 4 test images each.
  dataset = sliceEvalDataset(join(work, 'lesions'), { train: 6, val: 4, test: 4 });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('whylesion eval / probe on the tiny checkpoint', () => {
  it("eval --json gives every mode's table row and confusion; the second run embeds nothing and agrees; --report writes a page", async () => {
    const args = ['eval', dataset, '--model', MODEL, '--cache', cache, '--epochs', '30', '--json'];
    const first = await whylesion(...args, '--report', join(work, 'report.html'));
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain('28 embedded now, 0 from the cache');
    const out = JSON.parse(first.stdout) as {
      dataset: string;
      classes: string[];
      results: {
        mode: string;
        val_acc: number;
        test_acc: number;
        gap: number;
        average: number;
        balanced_acc: number;
        confusion: { val: number[][]; test: number[][] };
      }[];
    };
    expect(out.classes).toEqual(['melanocytic nevi', 'melanoma']);
    expect(out.results.map((r) => r.mode)).toEqual(['zeroshot', 'linear', 'concepts', 'knobo']);
    for (const r of out.results) {
      expect(r.confusion.val.flat().reduce((a, b) => a + b, 0)).toBe(8);
      expect(r.confusion.test.flat().reduce((a, b) => a + b, 0)).toBe(8);
      expect(r.val_acc).toBeCloseTo((100 * (r.confusion.val[0]![0]! + r.confusion.val[1]![1]!)) / 8, 9);
      expect(r.gap).toBeCloseTo(r.val_acc - r.test_acc, 9);
      expect(r.average).toBeCloseTo((r.val_acc + r.test_acc) / 2, 9);
    }
    expect(readFileSync(join(work, 'report.html'), 'utf8')).toMatch(
      /^<!doctype html>[\s\S]*<svg[\s\S]*Concepts with the largest weight/,
    );
    const second = await whylesion(...args);
    expect(second.stderr).toContain('0 embedded now, 28 from the cache');
    expect(JSON.parse(second.stdout)).toEqual(out); // seeded: the same numbers
    const table = await whylesion(
      'eval',
      dataset,
      '--model',
      MODEL,
      '--cache',
      cache,
      '--mode',
      'linear',
      '--solver',
      'lbfgs',
    );
    expect(table.stdout).toMatch(/mode\s+val\s+test\s+gap\s+average\s+balanced\nlinear\s+\d/);
  });

  it('probe train writes a probe that classify --probe and explain --probe use', async () => {
    const probe = join(work, 'knobo.json');
    const trained = await whylesion(
      'probe',
      'train',
      dataset,
      '--mode',
      'knobo',
      '--out',
      probe,
      '--model',
      MODEL,
      '--cache',
      cache,
      '--epochs',
      '30',
    );
    expect(trained.code, trained.stderr).toBe(0);
    expect(trained.stdout).toMatch(/knobo probe on .* val \d+\.\d%, test \d+\.\d%/);
    const image = join(dataset, 'test', 'melanoma', '000.png');
    const classified = JSON.parse(
      (await whylesion('classify', image, '--probe', probe, '--model', MODEL, '--json')).stdout,
    ) as { labels: string[]; probs: number[]; prediction: string }[];
    expect(classified[0]!.labels).toEqual(['melanocytic nevi', 'melanoma']);
    expect(classified[0]!.probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    expect(classified[0]!.prediction).toBe(
      classified[0]!.labels[classified[0]!.probs[0]! > classified[0]!.probs[1]! ? 0 : 1],
    );
    // a folder through the probe, in batches, streamed as JSON lines: the same numbers per image
    const folder = await whylesion(
      'classify',
      join(dataset, 'test', 'melanoma'),
      '--probe',
      probe,
      '--model',
      MODEL,
      '--format',
      'jsonl',
      '--batch',
      '2',
    );
    expect(folder.code, folder.stderr).toBe(0);
    const rows = folder.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { image: string; probs: number[] });
    expect(rows.length).toBeGreaterThan(1);
    const same = rows.find((r) => r.image === image)!;
    same.probs.forEach((p, k) => {
      expect(Math.abs(p - classified[0]!.probs[k]!)).toBeLessThan(1e-6);
    });
    const explained = JSON.parse(
      (await whylesion('explain', image, '--probe', probe, '--model', MODEL, '--json', '--top', '3')).stdout,
    ) as {
      prediction: string;
      concepts: { concept: string; weight: number; similarity: number; contribution: number }[];
    }[];
    expect(explained[0]!.prediction).toBe(classified[0]!.prediction);
    expect(explained[0]!.concepts).toHaveLength(3);
    for (const c of explained[0]!.concepts) expect(c.contribution).toBeCloseTo(c.weight * c.similarity, 9);
    const linear = join(work, 'linear.json');
    await whylesion(
      'probe',
      'train',
      dataset,
      '--mode',
      'linear',
      '--out',
      linear,
      '--model',
      MODEL,
      '--cache',
      cache,
      '--solver',
      'lbfgs',
    );
    const refused = await whylesion('explain', image, '--probe', linear, '--model', MODEL);
    expect(refused.code).toBe(1);
    expect(message(refused.stderr)).toMatch(/is a linear probe, which has no concepts to explain with/);
  });

  it('a KnoBo dataset under --images: missing images are listed and counted, and the run refuses beyond --max-missing', async () => {
    // UWaterloo's splits with only some of their images present: synthetic PNGs at the paths the pickles name.
    const root = join(work, 'datasets');
    const splitsDir = fileURLToPath(new URL('../assets/knobo/splits/UWaterloo/', import.meta.url));
    const source = (k: number) => join(EVAL_SYNTH, 'val', k === 0 ? 'melanoma' : 'melanocytic nevi');
    let present = 0,
      total = 0;
    for (const split of ['train', 'val', 'test']) {
      const byClass = await readSplitPickle(join(splitsDir, `class2images_${split}.p`));
      [...byClass.values()].forEach((paths, k) => {
        paths.forEach((p, i) => {
          total++;
          if (split === 'train' && i >= 5) return;
          mkdirSync(dirname(join(root, p)), { recursive: true });
          cpSync(join(source(k), readdirSync(source(k)).sort()[i % 10]!), join(root, p));
          present++;
        });
      });
    }
    const report = join(work, 'knobo-report.html');
    const refused = await whylesion(
      'eval',
      'UWaterloo',
      '--images',
      root,
      '--model',
      MODEL,
      '--cache',
      cache,
      '--report',
      report,
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      new RegExp(`${total - present} image\\(s\\) of UWaterloo's splits are missing under .*\\n  .*UWaterloo/`),
    );
    expect(message(refused.stderr)).toMatch(
      new RegExp(
        `^whylesion: ${total - present} image\\(s\\) of UWaterloo are missing .*at most 0 allowed.*--max-missing ${total - present}`,
      ),
    );
    expect(existsSync(report)).toBe(false);
    const ran = await whylesion(
      'eval',
      'UWaterloo',
      '--images',
      root,
      '--model',
      MODEL,
      '--cache',
      cache,
      '--max-missing',
      String(total - present),
      '--mode',
      'zeroshot,knobo',
      '--epochs',
      '10',
      '--json',
    );
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stderr).toContain('train 10, val 20, test 20 images');
    expect(JSON.parse(ran.stdout).classes).toEqual(['melanoma', 'not melanoma']);
  });

  it('bad datasets end in one sentence and write nothing', async () => {
    const empty = join(work, 'empty-class');
    cpSync(dataset, empty, { recursive: true });
    rmSync(join(empty, 'val', 'melanoma'), { recursive: true });
    mkdirSync(join(empty, 'val', 'melanoma'));
    const report = join(work, 'never.html');
    const cases: [string[], RegExp][] = [
      [
        ['eval', empty, '--report', report],
        /^whylesion: The class folder .*val\/melanoma has no images .*; add images or remove the folder\.$/,
      ],
      [
        ['eval', 'NoSuchSet'],
        /^whylesion: NoSuchSet is neither a dataset folder nor a KnoBo dataset \(BCN20000, HAM10000/,
      ],
      [['eval', 'HAM10000'], /^whylesion: The KnoBo dataset HAM10000 needs --images ROOT/],
      [
        ['eval', dataset, '--mode', 'linear,magic'],
        /^whylesion: --mode linear,magic must list modes from zeroshot, linear, concepts, knobo/,
      ],
      [
        ['probe', 'train', dataset, '--mode', 'zeroshot', '--out', report],
        /^whylesion: --mode zeroshot must list modes from linear, concepts, knobo/,
      ],
      [
        ['classify', join(dataset, 'test', 'melanoma', '000.png'), '--probe', join(work, 'no-probe.json')],
        /^whylesion: Cannot read the probe .*no-probe\.json as JSON/,
      ],
    ];
    writeFileSync(join(work, 'not-a-probe.json'), '{"format": "something else"}');
    cases.push([
      ['classify', join(dataset, 'test', 'melanoma', '000.png'), '--probe', join(work, 'not-a-probe.json')],
      /^whylesion: .*not-a-probe\.json is not a whylesion probe/,
    ]);
    for (const [args, expected] of cases) {
      const r = await whylesion(...args, '--model', MODEL, ...(args[0] === 'classify' ? [] : ['--cache', cache]));
      expect(r.code, args.join(' ')).toBe(1);
      expect(message(r.stderr), args.join(' ')).toMatch(expected);
    }
    expect(existsSync(report)).toBe(false);
  });

  it('a mode the dataset cannot run is skipped with its reason; the others run, exit 0; tables and the report name the classes', async () => {
    // 'vascular tumours' is not among KnoBo's prior classes: knobo cannot run, the other three can.
    const odd = join(work, 'odd-classes');
    cpSync(dataset, odd, { recursive: true });
    for (const split of ['train', 'val', 'test']) {
      cpSync(join(odd, split, 'melanoma'), join(odd, split, 'vascular tumours'), { recursive: true });
      rmSync(join(odd, split, 'melanoma'), { recursive: true });
    }
    const report = join(work, 'odd.html');
    const json = await whylesion(
      'eval',
      odd,
      '--model',
      MODEL,
      '--cache',
      cache,
      '--epochs',
      '5',
      '--json',
      '--report',
      report,
    );
    expect(json.code, json.stderr).toBe(0);
    const out = JSON.parse(json.stdout) as { results: { mode: string }[]; skipped: { mode: string; reason: string }[] };
    expect(out.results.map((r) => r.mode)).toEqual(['zeroshot', 'linear', 'concepts']);
    expect(out.skipped).toEqual([
      { mode: 'knobo', reason: expect.stringContaining("KnoBo's priors have no class 'vascular tumours'") },
    ]);
    expect(json.stderr.split('\n').filter((l) => l.startsWith('Skipping knobo: '))).toHaveLength(1);
    const html = readFileSync(report, 'utf8');
    expect(html).toContain('knobo skipped:');
    expect(html).toMatch(/rotate\(-90[^>]*>vascular tumours</); // the confusion matrix's columns carry class names
    // The table heads the confusion columns with the class names, each count right-aligned under its name.
    const table = await whylesion(
      'eval',
      odd,
      '--model',
      MODEL,
      '--cache',
      cache,
      '--mode',
      'linear,knobo',
      '--solver',
      'lbfgs',
    );
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.split('\n');
    const header = lines.find((l) => l.startsWith('  true class'))!;
    expect(header).toMatch(/true class\s+val \/ test\s+melanocytic nevi {2}vascular tumours$/);
    const nevi = lines[lines.indexOf(header) + 1]!;
    expect(nevi.length).toBe(header.length);
    expect(table.stdout).toMatch(/\nknobo skipped: KnoBo's priors have no class 'vascular tumours'/);
    // Every mode impossible: one sentence, exit 1. An existing --report is kept without --force.
    const none = await whylesion('eval', odd, '--model', MODEL, '--cache', cache, '--mode', 'knobo');
    expect(none.code).toBe(1);
    expect(message(none.stderr)).toMatch(/^whylesion: None of the modes knobo can run on /);
    const kept = await whylesion(
      'eval',
      odd,
      '--model',
      MODEL,
      '--cache',
      cache,
      '--mode',
      'linear',
      '--report',
      report,
    );
    expect(kept.code).toBe(1);
    expect(message(kept.stderr)).toBe(
      `whylesion: --report ${report} already exists; pass --force to overwrite it, or choose another path.`,
    );
    expect(readFileSync(report, 'utf8')).toBe(html);
    const forced = await whylesion(
      'eval',
      odd,
      '--model',
      MODEL,
      '--cache',
      cache,
      '--mode',
      'linear',
      '--solver',
      'lbfgs',
      '--report',
      report,
      '--force',
    );
    expect(forced.code, forced.stderr).toBe(0);
    expect(readFileSync(report, 'utf8')).not.toBe(html);
  });
});
