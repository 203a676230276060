/** The CPU reference of vision_tokens.wgsl; the tests check the WGSL against it. */

/** [class_embedding; patch embeddings [B·(T−1), W]] + positions [T, W] → [B·T, W]. */
export function visionTokensRef(
  patchEmbed: Float32Array,
  classEmbedding: Float32Array,
  pos: Float32Array,
  batch: number,
  seq: number,
  width: number,
): Float32Array {
  const y = new Float32Array(batch * seq * width);
  for (let b = 0; b < batch; b++)
    for (let t = 0; t < seq; t++)
      for (let c = 0; c < width; c++) {
        const token = t === 0 ? classEmbedding[c]! : patchEmbed[(b * (seq - 1) + t - 1) * width + c]!;
        y[(b * seq + t) * width + c] = token + pos[t * width + c]!;
      }
  return y;
}
