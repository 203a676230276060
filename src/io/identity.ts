/** TEMP identity shim (CONTRACT.md part 1): the `state` branch owns this module; the merger drops this version. */
export interface ModelIdentity {
  /** 'sha256:<64 lowercase hex>' of the weights file's bytes as loaded. */
  weights: string;
  /** 'sha256:<64 hex>' of open_clip_config.json's bytes. */
  config: string;
  /** Weight storage on the GPU. */
  dtype: 'f32' | 'f16';
  /** Informational only, never compared. */
  source: string;
}

/** The comparable part (source excluded). Equal keys = same numbers. */
export function identityKey(id: ModelIdentity): string {
  return `${id.weights} ${id.config} ${id.dtype}`;
}

/** One phrase for messages. */
export function describeIdentity(id: ModelIdentity): string {
  return `${id.weights.slice(0, 15)}… (${id.dtype}, from ${id.source})`;
}
