import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

/**
 * Each command's --help and the README's CLI section agree, both ways: every flag a command's help lists is
 * documented in the README, every flag on a README synopsis line `whylesion CMD ...` is one CMD's help
 * lists, every flag the section names belongs to some command, and the defaults a synopsis shows
 * (`[--batch 1]`) are the ones the help shows.
 */
const CLI = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
const COMMANDS = [
  'classify',
  'zeroshot',
  'explain',
  'eval',
  'probe',
  'embed',
  'merge',
  'search',
  'tokenize',
  'preprocess',
  'convert',
  'synth',
  'bench',
  'tune',
  'serve-demo',
  'parity',
  'info',
];
const GLOBAL_FLAGS = ['version', 'help'];
const run = promisify(execFile);

const flagsIn = (text: string): Set<string> =>
  new Set([...text.matchAll(/(?<![\w-])--([a-zA-Z][\w-]*)/g)].map((m) => m[1] ?? ''));
/** `[--name VALUE]` where VALUE starts with a digit: the default a synopsis shows. */
const defaultsIn = (text: string): Map<string, string> =>
  new Map([...text.matchAll(/\[--([\w-]+) (\d[\w.,-]*)\]/g)].map((m) => [m[1] ?? '', m[2] ?? '']));

function readmeCliSection(): string {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const start = readme.indexOf('\n## CLI\n');
  expect(start).toBeGreaterThan(0);
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

it("every command's --help and the README's CLI section list the same flags and defaults", async () => {
  const section = readmeCliSection();
  const documented = flagsIn(section);
  const synopsis = section
    .slice(section.indexOf('```'), section.indexOf('```', section.indexOf('```') + 3))
    .split('\n');
  const known = new Set(GLOBAL_FLAGS);
  const problems: string[] = [];
  for (const command of COMMANDS) {
    const { stdout: help } = await run(process.execPath, [CLI, command, '--help']);
    const offered = flagsIn(help);
    offered.forEach((f) => {
      known.add(f);
    });
    for (const flag of offered)
      if (!documented.has(flag)) problems.push(`${command} --help lists --${flag}, the README's CLI section does not`);
    const lines = synopsis.filter((l) => l.startsWith(`whylesion ${command} `)).join('\n');
    expect(lines, `a README synopsis line for ${command}`).not.toBe('');
    for (const flag of flagsIn(lines))
      if (!offered.has(flag) && !GLOBAL_FLAGS.includes(flag))
        problems.push(`the README's synopsis gives ${command} --${flag}, its --help does not`);
    const shown = defaultsIn(help);
    for (const [flag, value] of defaultsIn(lines)) {
      if (shown.has(flag) && shown.get(flag) !== value)
        problems.push(`${command} --${flag}: the README's synopsis shows ${value}, --help shows ${shown.get(flag)}`);
    }
  }
  for (const flag of documented)
    if (!known.has(flag)) problems.push(`the README's CLI section names --${flag}, which no command's --help lists`);
  expect(problems).toEqual([]);
}, 120_000);
