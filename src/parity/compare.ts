import type { ClipConfig } from '../model/config.js';
import type { StepDump } from '../model/clip.js';
import { present } from '../errors.js';

/** One compared step of a tower: `block` is N of the state dict's `resblocks.N`, null for the steps around the blocks. */
export interface StepComparison {
  tower: 'image' | 'text';
  step: string;
  block: number | null;
  /** The engine's rows of the reference tensor that were compared. */
  rows: string;
  maxAbs: number;
  /** max |engine − reference| / max |reference|. */
  relative: number;
  exceeds: boolean;
  engine: { name: string; shape: number[] };
  reference: { name: string; shape: number[] };
}

/** The aligned pair of arrays behind one comparison (what --dump writes). */
export interface ComparedPair {
  comparison: StepComparison;
  engine: Float32Array;
  reference: Float32Array;
}

export function maxAbsAndRelative(got: Float32Array, want: Float32Array): { maxAbs: number; relative: number } {
  if (got.length !== want.length) throw new Error(`comparing ${got.length} values with ${want.length}`);
  let maxAbs = 0,
    magnitude = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    // NaN compares false: keep it visible instead of letting Math.max skip it.
    maxAbs = d > maxAbs || Number.isNaN(d) ? d : maxAbs;
    magnitude = Math.max(magnitude, Math.abs(want[i]!));
  }
  return { maxAbs, relative: Number.isNaN(maxAbs) ? NaN : maxAbs / Math.max(magnitude, 1e-30) };
}

/** The lowest cosine over rows, and every row's, of two [rows, E] tables. */
export function rowCosines(a: Float32Array, b: Float32Array, E: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < a.length / E; r++) {
    let dot = 0,
      na = 0,
      nb = 0;
    for (let i = r * E; i < (r + 1) * E; i++) {
      dot += a[i]! * b[i]!;
      na += a[i]! * a[i]!;
      nb += b[i]! * b[i]!;
    }
    out.push(dot / Math.sqrt(na * nb));
  }
  return out;
}

/** Rows [b, from, to) of every batch entry of a [B, T, W] table. */
function positions(x: Float32Array, batch: number, T: number, W: number, from: number, to: number): Float32Array {
  const out = new Float32Array(batch * (to - from) * W);
  for (let b = 0; b < batch; b++) out.set(x.subarray((b * T + from) * W, (b * T + to) * W), b * (to - from) * W);
  return out;
}

/** Row index[b] of every batch entry of a [B, T, W] table. */
function gather(x: Float32Array, T: number, W: number, index: number[]): Float32Array {
  const out = new Float32Array(index.length * W);
  index.forEach((t, b) => {
    out.set(x.subarray((b * T + t) * W, (b * T + t + 1) * W), b * W);
  });
  return out;
}

/**
 * Lines up the engine's per-step readouts (ClipModel.dumpPixels/dumpTokens and the final embeddings) with the
 * reference's dumps (clip_reference.py --dump-blocks) and measures each step, for every layout the engine runs
 * (class-token or patch-mean pooling, ln_post before or after it, no ln_pre; argmax, first, last or embed_cls text
 * pooling). Where the engine computes fewer rows than open_clip (exact shortcuts: with class-token pooling the last
 * image block finishes only the class rows; under the causal mask the text tower runs through its last pooled
 * row), the reference's matching rows are compared. Both sides' pooled rows (`vision_pooled`, `text_pooled`) are
 * the layer-normed rows that enter the projection.
 */
export function compareTowers(
  config: ClipConfig,
  engine: { vision: StepDump; text: StepDump; imageEmbeddings: Float32Array; textEmbeddings: Float32Array },
  reference: (name: string) => { shape: number[]; data: Float32Array },
  inputs: { images: number; texts: number },
  tol: number,
): ComparedPair[] {
  const pairs: ComparedPair[] = [];
  const add = (
    tower: 'image' | 'text',
    step: string,
    block: number | null,
    rows: string,
    engineName: string,
    got: Float32Array,
    engineShape: number[],
    refName: string,
    want: Float32Array,
  ): void => {
    const { maxAbs, relative } = maxAbsAndRelative(got, want);
    const refShape = reference(refName).shape;
    pairs.push({
      comparison: {
        tower,
        step,
        block,
        rows,
        maxAbs,
        relative,
        exceeds: !(relative <= tol),
        engine: { name: engineName, shape: engineShape },
        reference: { name: refName, shape: refShape },
      },
      engine: got,
      reference: want,
    });
  };
  const B = inputs.images,
    v = config.vision,
    E = config.embedDim;
  if (B > 0) {
    const T = (v.imageSize / v.patchSize) ** 2 + 1,
      W = v.width;
    add(
      'image',
      v.lnPre ? 'ln_pre' : 'patch_embed',
      null,
      'all',
      'vision.ln_pre',
      engine.vision.get('vision.ln_pre')!,
      [B, T, W],
      'vision_ln_pre',
      reference('vision_ln_pre').data,
    );
    for (let i = 0; i < v.layers; i++) {
      const n = String(i).padStart(2, '0');
      const full = engine.vision.get(`vision.block${n}`);
      const want = reference(`vision_block${n}`).data;
      if (full) add('image', `resblocks.${i}`, i, 'all', `vision.block${n}`, full, [B, T, W], `vision_block${n}`, want);
      else
        add(
          'image',
          `resblocks.${i}`,
          i,
          'class token',
          `vision.block${n}.kept`,
          engine.vision.get(`vision.block${n}.kept`)!,
          [B, W],
          `vision_block${n}`,
          gather(want, T, W, new Array<number>(B).fill(0)),
        );
    }
    add(
      'image',
      'ln_post',
      null,
      v.pool === 'tok' ? 'class token' : 'mean of the patch tokens',
      'vision.pooled',
      engine.vision.get('vision.pooled')!,
      [B, W],
      'vision_pooled',
      reference('vision_pooled').data,
    );
    add(
      'image',
      'embedding',
      null,
      'all',
      'image_embeddings_raw',
      engine.imageEmbeddings,
      [B, E],
      'image_embeddings_raw',
      reference('image_embeddings_raw').data,
    );
  }
  const N = inputs.texts,
    t = config.text;
  if (N > 0) {
    const W = t.width;
    const embed = present(engine.text.get('text.embed'), 'the engine dump text.embed');
    const seq = embed.length / N / W;
    // The reference's rows: the context, plus the appended class token under embed_cls.
    const full = reference('text_embed').shape[1] ?? seq;
    const rows = seq === full ? 'all' : `positions 0..${seq - 1} (through the last pooled row)`;
    const slice = (name: string): Float32Array =>
      seq === full ? reference(name).data : positions(reference(name).data, N, full, W, 0, seq);
    add('text', 'embed', null, rows, 'text.embed', embed, [N, seq, W], 'text_embed', slice('text_embed'));
    for (let i = 0; i < t.layers; i++) {
      const n = String(i).padStart(2, '0');
      add(
        'text',
        `resblocks.${i}`,
        i,
        rows,
        `text.block${n}`,
        present(engine.text.get(`text.block${n}`), `the engine dump text.block${n}`),
        [N, seq, W],
        `text_block${n}`,
        slice(`text_block${n}`),
      );
    }
    const pooledRow = t.embedCls ? 'class token (embed_cls)' : t.pool === 'argmax' ? 'EOT token' : `${t.pool} token`;
    add(
      'text',
      'ln_final',
      null,
      pooledRow,
      'text.pooled',
      present(engine.text.get('text.pooled'), 'the engine dump text.pooled'),
      [N, W],
      'text_pooled',
      reference('text_pooled').data,
    );
    add(
      'text',
      'embedding',
      null,
      'all',
      'text_embeddings_raw',
      engine.textEmbeddings,
      [N, E],
      'text_embeddings_raw',
      reference('text_embeddings_raw').data,
    );
  }
  return pairs;
}
