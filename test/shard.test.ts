import { describe, expect, it } from 'vitest';
import { parseShard } from '../src/cli/shard.js';
import { UserError } from '../src/errors.js';

const refused = (f: () => unknown): string => {
  try {
    f();
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    const message = (error as Error).message;
    expect(message, 'one sentence').not.toMatch(/\.\s+[A-Z]/);
    return message;
  }
  throw new Error('not refused');
};

describe('--shard', () => {
  it('i/n and nothing', () => {
    expect(parseShard(undefined, undefined, {})).toEqual({ index: 0, count: 1 });
    expect(parseShard('2/5', undefined, {})).toEqual({ index: 2, count: 5 });
    expect(refused(() => parseShard('5/5', undefined, {}))).toMatch(/--shard 5\/5/);
    expect(refused(() => parseShard('1/0', undefined, {}))).toMatch(/i\/n/);
    expect(refused(() => parseShard('a/b', undefined, {}))).toMatch(/i\/n/);
    expect(refused(() => parseShard('0/2', '2', {}))).toMatch(/--shards N goes with --shard auto/);
  });

  it('auto in a Slurm job array: the task id less the array minimum, the array count', () => {
    expect(parseShard('auto', undefined, { SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_COUNT: '4' })).toEqual({
      index: 3,
      count: 4,
    });
    expect(
      parseShard('auto', undefined, {
        SLURM_ARRAY_TASK_ID: '7',
        SLURM_ARRAY_TASK_MIN: '5',
        SLURM_ARRAY_TASK_MAX: '8',
        SLURM_ARRAY_TASK_COUNT: '4',
      }),
    ).toEqual({ index: 2, count: 4 });
    expect(
      parseShard('auto', '4', { SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_COUNT: '4', SLURM_ARRAY_TASK_STEP: '1' }),
    ).toEqual({ index: 0, count: 4 });
  });

  it('auto in a Kubernetes Indexed Job: JOB_COMPLETION_INDEX and --shards', () => {
    expect(parseShard('auto', '3', { JOB_COMPLETION_INDEX: '2' })).toEqual({ index: 2, count: 3 });
    expect(parseShard('auto', '3', { JOB_COMPLETION_INDEX: '0', SLURM_ARRAY_TASK_ID: '' })).toEqual({
      index: 0,
      count: 3,
    });
  });

  it('missing or inconsistent variables are one sentence', () => {
    expect(refused(() => parseShard('auto', undefined, {}))).toMatch(
      /neither SLURM_ARRAY_TASK_ID .* nor JOB_COMPLETION_INDEX/,
    );
    expect(refused(() => parseShard('auto', undefined, { SLURM_ARRAY_TASK_ID: '1' }))).toMatch(
      /no SLURM_ARRAY_TASK_COUNT/,
    );
    expect(
      refused(() => parseShard('auto', undefined, { SLURM_ARRAY_TASK_ID: '4', SLURM_ARRAY_TASK_COUNT: '4' })),
    ).toMatch(/cannot place task 4 in an array of 4/);
    // --array=0,2,5: three tasks over a range of six is not contiguous.
    expect(
      refused(() =>
        parseShard('auto', undefined, {
          SLURM_ARRAY_TASK_ID: '2',
          SLURM_ARRAY_TASK_MIN: '0',
          SLURM_ARRAY_TASK_MAX: '5',
          SLURM_ARRAY_TASK_COUNT: '3',
        }),
      ),
    ).toMatch(/contiguous/);
    expect(
      refused(() =>
        parseShard('auto', undefined, {
          SLURM_ARRAY_TASK_ID: '2',
          SLURM_ARRAY_TASK_COUNT: '3',
          SLURM_ARRAY_TASK_STEP: '2',
        }),
      ),
    ).toMatch(/SLURM_ARRAY_TASK_STEP is 2/);
    expect(refused(() => parseShard('auto', '5', { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '4' }))).toMatch(
      /--shards 5 disagrees/,
    );
    expect(
      refused(() => parseShard('auto', undefined, { SLURM_ARRAY_TASK_ID: 'x', SLURM_ARRAY_TASK_COUNT: '4' })),
    ).toMatch(/SLURM_ARRAY_TASK_ID=x/);
    expect(refused(() => parseShard('auto', undefined, { JOB_COMPLETION_INDEX: '1' }))).toMatch(/needs --shards N/);
    expect(refused(() => parseShard('auto', '2', { JOB_COMPLETION_INDEX: '2' }))).toMatch(/not below --shards 2/);
    expect(refused(() => parseShard('auto', '0', { JOB_COMPLETION_INDEX: '0' }))).toMatch(/--shards 0/);
    expect(
      refused(() =>
        parseShard('auto', '2', { JOB_COMPLETION_INDEX: '1', SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '2' }),
      ),
    ).toMatch(/both/);
  });
});
