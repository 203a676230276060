import { UserError } from '../errors.js';
import type { ClipConfig } from './config.js';
import { clipSchema } from './schema.js';

/** Every key of open_clip's CLIP.state_dict() with its shape, in state_dict order (see clipSchema). */
export function expectedTensors(cfg: ClipConfig): Map<string, number[]> {
  return new Map(clipSchema(cfg).tensors.map((spec) => [spec.name, [...spec.shape]]));
}

const LIST_LIMIT = 8;

function listed(items: string[]): string {
  if (items.length <= LIST_LIMIT) return items.join(', ');
  return `${items.slice(0, LIST_LIMIT).join(', ')} and ${items.length - LIST_LIMIT} more`;
}

const shapeText = (shape: readonly number[]): string => `[${shape.join(',')}]`;

/**
 * Checks `available` (name -> shape) against the config like torch's strict load_state_dict:
 * one UserError lists missing, unexpected and wrongly shaped tensors. `what` names the weights file.
 */
export function checkTensors(
  cfg: ClipConfig,
  available: ReadonlyMap<string, readonly number[]>,
  what = 'the checkpoint',
): void {
  const expected = expectedTensors(cfg);
  const missing = [...expected.keys()].filter((name) => !available.has(name));
  const unexpected = [...available.keys()].filter((name) => !expected.has(name));
  const misshapen: string[] = [];
  for (const [name, shape] of expected) {
    const actual = available.get(name);
    if (actual && shapeText(actual) !== shapeText(shape))
      misshapen.push(`${name} is ${shapeText(actual)}, expected ${shapeText(shape)}`);
  }
  const problems: string[] = [];
  if (missing.length > 0) problems.push(`${missing.length} missing (${listed(missing)})`);
  if (unexpected.length > 0) problems.push(`${unexpected.length} unexpected (${listed(unexpected)})`);
  if (misshapen.length > 0) problems.push(`${misshapen.length} with the wrong shape (${listed(misshapen)})`);
  if (problems.length > 0) {
    throw new UserError(
      `${what} does not match its config: tensors ${problems.join('; ')}; use the open_clip_config.json that came with these weights.`,
    );
  }
}
