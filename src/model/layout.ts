import { UserError } from '../errors.js';
import type { ClipConfig } from './config.js';

/** open_clip's MLP hidden width: int(width * mlp_ratio). */
export const mlpWidth = (width: number, mlpRatio: number): number => Math.trunc(width * mlpRatio);

function addResidualBlocks(into: Map<string, number[]>, prefix: string, layers: number, width: number, mlpRatio: number): void {
  const hidden = mlpWidth(width, mlpRatio);
  for (let i = 0; i < layers; i++) {
    const p = `${prefix}transformer.resblocks.${i}.`;
    into.set(`${p}ln_1.weight`, [width]);
    into.set(`${p}ln_1.bias`, [width]);
    into.set(`${p}attn.in_proj_weight`, [3 * width, width]);
    into.set(`${p}attn.in_proj_bias`, [3 * width]);
    into.set(`${p}attn.out_proj.weight`, [width, width]);
    into.set(`${p}attn.out_proj.bias`, [width]);
    into.set(`${p}ln_2.weight`, [width]);
    into.set(`${p}ln_2.bias`, [width]);
    into.set(`${p}mlp.c_fc.weight`, [hidden, width]);
    into.set(`${p}mlp.c_fc.bias`, [hidden]);
    into.set(`${p}mlp.c_proj.weight`, [width, hidden]);
    into.set(`${p}mlp.c_proj.bias`, [width]);
  }
}

/**
 * Every key of open_clip's CLIP.state_dict() for a ViT image tower and the standard text transformer, with its
 * shape, in state_dict order. The causal attn_mask buffer is registered with persistent=False, so it is not saved.
 */
export function expectedTensors(cfg: ClipConfig): Map<string, number[]> {
  const { vision: v, text: t, embedDim } = cfg;
  const grid = v.imageSize / v.patchSize;
  const tensors = new Map<string, number[]>();
  tensors.set('positional_embedding', [t.contextLength, t.width]);
  tensors.set('text_projection', [t.width, embedDim]);
  tensors.set('logit_scale', []);
  tensors.set('visual.class_embedding', [v.width]);
  tensors.set('visual.positional_embedding', [grid * grid + 1, v.width]);
  tensors.set('visual.proj', [v.width, embedDim]);
  tensors.set('visual.conv1.weight', [v.width, 3, v.patchSize, v.patchSize]);
  tensors.set('visual.ln_pre.weight', [v.width]);
  tensors.set('visual.ln_pre.bias', [v.width]);
  addResidualBlocks(tensors, 'visual.', v.layers, v.width, v.mlpRatio);
  tensors.set('visual.ln_post.weight', [v.width]);
  tensors.set('visual.ln_post.bias', [v.width]);
  addResidualBlocks(tensors, '', t.layers, t.width, t.mlpRatio);
  tensors.set('token_embedding.weight', [t.vocabSize, t.width]);
  tensors.set('ln_final.weight', [t.width]);
  tensors.set('ln_final.bias', [t.width]);
  return tensors;
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
export function checkTensors(cfg: ClipConfig, available: ReadonlyMap<string, readonly number[]>, what = 'the checkpoint'): void {
  const expected = expectedTensors(cfg);
  const missing = [...expected.keys()].filter((name) => !available.has(name));
  const unexpected = [...available.keys()].filter((name) => !expected.has(name));
  const misshapen: string[] = [];
  for (const [name, shape] of expected) {
    const actual = available.get(name);
    if (actual && shapeText(actual) !== shapeText(shape)) misshapen.push(`${name} is ${shapeText(actual)}, expected ${shapeText(shape)}`);
  }
  const problems: string[] = [];
  if (missing.length > 0) problems.push(`${missing.length} missing (${listed(missing)})`);
  if (unexpected.length > 0) problems.push(`${unexpected.length} unexpected (${listed(unexpected)})`);
  if (misshapen.length > 0) problems.push(`${misshapen.length} with the wrong shape (${listed(misshapen)})`);
  if (problems.length > 0) {
    throw new UserError(`${what} does not match its config: tensors ${problems.join('; ')}; use the open_clip_config.json that came with these weights.`);
  }
}
