import { UserError } from '../errors.js';
import { positiveInteger } from './args.js';

/** Which slice of the sorted listing one job embeds: positions p with p % count === index. */
export interface Shard {
  index: number;
  count: number;
}

/**
 * `--shard i/n`, `--shard auto` (from the scheduler's variables) or nothing (the whole listing).
 * Slurm job arrays: index = SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN (when set), count = SLURM_ARRAY_TASK_COUNT.
 * Kubernetes Indexed Jobs: index = JOB_COMPLETION_INDEX, count from `--shards N` (the Job's completions).
 */
export function parseShard(
  value: string | undefined,
  shards: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Shard {
  if (value !== 'auto' && shards !== undefined)
    throw new UserError(
      "--shards N goes with --shard auto (a Kubernetes Indexed Job's completions); with --shard i/n leave it out.",
    );
  if (value === undefined) return { index: 0, count: 1 };
  if (value === 'auto')
    return shardFromEnvironment(env, shards === undefined ? undefined : positiveInteger('shards', shards));
  const m = /^(\d+)\/(\d+)$/.exec(value);
  const index = Number(m?.[1]),
    count = Number(m?.[2]);
  if (!m || count < 1 || index >= count)
    throw new UserError(
      `--shard ${value} must be i/n with 0 <= i < n (e.g. 0/4), or auto inside a Slurm job array or Kubernetes Indexed Job.`,
    );
  return { index, count };
}

function shardFromEnvironment(env: NodeJS.ProcessEnv, shards: number | undefined): Shard {
  const whole = (name: string): number | undefined => {
    const text = env[name];
    if (text === undefined || text === '') return undefined;
    if (!/^\d+$/.test(text))
      throw new UserError(
        `--shard auto read ${name}=${text}, which is not a whole number; check the job's environment.`,
      );
    return Number(text);
  };
  const slurmId = whole('SLURM_ARRAY_TASK_ID');
  const k8sIndex = whole('JOB_COMPLETION_INDEX');
  if (slurmId !== undefined && k8sIndex !== undefined) {
    throw new UserError(
      '--shard auto found both SLURM_ARRAY_TASK_ID and JOB_COMPLETION_INDEX set; unset the one that does not belong to this job, or pass --shard i/n.',
    );
  }
  if (slurmId !== undefined) {
    const count = whole('SLURM_ARRAY_TASK_COUNT');
    const min = whole('SLURM_ARRAY_TASK_MIN') ?? 0;
    const max = whole('SLURM_ARRAY_TASK_MAX');
    const step = whole('SLURM_ARRAY_TASK_STEP') ?? 1;
    if (count === undefined || count < 1)
      throw new UserError(
        '--shard auto found SLURM_ARRAY_TASK_ID but no SLURM_ARRAY_TASK_COUNT; submit with sbatch --array=0-N (Slurm 17.11 or later sets it), or pass --shard i/n.',
      );
    if (step !== 1)
      throw new UserError(
        `--shard auto needs a contiguous job array, but SLURM_ARRAY_TASK_STEP is ${step}; submit with --array=0-${count - 1}, or pass --shard i/n.`,
      );
    const index = slurmId - min;
    if (index < 0 || index >= count || (max !== undefined && max - min + 1 !== count)) {
      throw new UserError(
        `--shard auto cannot place task ${slurmId} in an array of ${count} starting at ${min}${max === undefined ? '' : ` and ending at ${max}`}; submit a contiguous --array=0-${count - 1}, or pass --shard i/n.`,
      );
    }
    if (shards !== undefined && shards !== count)
      throw new UserError(
        `--shards ${shards} disagrees with SLURM_ARRAY_TASK_COUNT=${count}; leave --shards out under Slurm.`,
      );
    return { index, count };
  }
  if (k8sIndex !== undefined) {
    if (shards === undefined)
      throw new UserError(
        "--shard auto in a Kubernetes Indexed Job needs --shards N, the Job's completions (Kubernetes does not pass the count).",
      );
    if (k8sIndex >= shards)
      throw new UserError(
        `--shard auto read JOB_COMPLETION_INDEX=${k8sIndex}, which is not below --shards ${shards}; set --shards to the Job's completions.`,
      );
    return { index: k8sIndex, count: shards };
  }
  throw new UserError(
    '--shard auto found neither SLURM_ARRAY_TASK_ID (a Slurm job array) nor JOB_COMPLETION_INDEX (a Kubernetes Indexed Job); run it inside one, or pass --shard i/n.',
  );
}
