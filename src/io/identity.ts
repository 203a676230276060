/**
 * What a model's numbers depend on: its weights' bytes, its config's bytes and the GPU weight dtype. Saved state
 * (embedding files, the feature and text caches, probes, resume journals) records it, so state made by other
 * weights is never mixed in. Runtime-neutral: the Node-only file hashing is in ./file-hash.ts.
 */
export interface ModelIdentity {
  /**
   * 'sha256:<64 lowercase hex>' of the weights file's bytes as loaded (for a folder that only has the .bin, of the
   * converted safetensors); for hf-hub the LFS etag IS that sha256, so it is free there. In the browser, where
   * hashing 1.7 GB is not done, 'etag:<...>' or 'blob:<name>:<size>:<lastModified>'.
   */
  weights: string;
  /** 'sha256:<64 hex>' of open_clip_config.json's bytes (the config changes the computation too). */
  config: string;
  /** Weight storage on the GPU: 'f32' | 'f16'. */
  dtype: 'f32' | 'f16';
  /** Present when a tower passes f16 activations between its kernels (the default with f16 weights): other numbers. */
  activations?: 'f16';
  /** Informational only, never compared: the folder path, or 'hf-hub:owner/name@<commit>'. */
  source: string;
}

/** The identity a checkpoint has before a dtype is chosen for it. */
export type CheckpointIdentity = Omit<ModelIdentity, 'dtype' | 'activations'>;

/**
 * The comparable part: `${weights} ${config} ${dtype}`, plus ` f16-activations` when so (source excluded). Equal
 * keys = same numbers.
 */
export function identityKey(id: ModelIdentity): string {
  return `${id.weights} ${id.config} ${id.dtype}${id.activations === 'f16' ? ' f16-activations' : ''}`;
}

/** One phrase for messages: e.g. 'sha256:0123abcd… (f32, from weights/whylesionclip)'. */
export function describeIdentity(id: ModelIdentity): string {
  const weights = id.weights.startsWith('sha256:') ? `${id.weights.slice(0, 'sha256:'.length + 8)}…` : id.weights;
  return `${weights} (${id.dtype}${id.activations === 'f16' ? ', f16 activations' : ''}, from ${id.source})`;
}

/** True when `value` has the shape of a ModelIdentity (for identities read back from files). */
export function isModelIdentity(value: unknown): value is ModelIdentity {
  const v = value as Partial<Record<keyof ModelIdentity, unknown>> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.weights === 'string' &&
    typeof v.config === 'string' &&
    (v.dtype === 'f32' || v.dtype === 'f16') &&
    (v.activations === undefined || v.activations === 'f16') &&
    typeof v.source === 'string'
  );
}

/**
 * 'sha256:<hex>' of a small buffer (a config), with Web Crypto so every runtime has it. A page served over plain
 * HTTP from another host has no crypto.subtle: there it is 'fnv1a:<hex>' (no saved state depends on it there).
 */
export async function sha256Tag(bytes: Uint8Array | string): Promise<string> {
  const data = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes;
  if (!globalThis.crypto?.subtle) {
    let h = 0x811c9dc5;
    for (const b of data) h = Math.imul(h ^ b, 0x01000193) >>> 0;
    return `fnv1a:${h.toString(16).padStart(8, '0')}:${data.length}`;
  }
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', new Uint8Array(data)));
  return `sha256:${Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}
