/**
 * The model families whylesion runs. A checkpoint's family follows from what io/ opened: today every checkpoint
 * is open_clip's (a Hugging Face CLIPModel is mapped onto open_clip's config and names in io/).
 */
import { openClip } from './openclip/index.js';

export type * from './family.js';
export { openClip } from './openclip/index.js';

export const FAMILIES = [openClip] as const;

/** The family that runs a checkpoint io/ opened. */
export function familyOf(_checkpoint: { config: unknown }): typeof openClip {
  return openClip;
}
