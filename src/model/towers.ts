import { GraphBuilder, type Graph, type Tensor } from '../graph/graph.js';
import type { ClipConfig } from './config.js';
import { mlpWidth } from './schema.js';
import type { FloatDtype } from '../kernels/index.js';
import type { Block, ComputeDtype, TextWeights, VisionWeights } from './weights.js';

/**
 * How a tower graph is recorded: weight dtype, the dtype of the activations passed between the kernels of a
 * block (f16 only where every kernel of the block takes it), and whether the exact shortcuts are on (see
 * ClipLoadOptions). The residual stream, the embeddings and the pooled rows stay f32.
 */
export interface TowerOptions {
  dtype: ComputeDtype;
  activations: { vision: FloatDtype; text: FloatDtype };
  exactShortcuts: boolean;
}

const F32 = 4;

/**
 * open_clip's VisionTransformer on preprocessed pixels [B, 3, S, S] → raw embeddings [B, E]. Input:
 * `vision.pixels`; output: `vision.out`. Checkpoints: `vision.ln_pre`, `vision.blockNN` ([B, T, W]; with exact
 * shortcuts the last is `vision.blockNN.kept`, the class rows [B, W]), `vision.pooled`, `vision.out`.
 */
export function visionGraph(config: ClipConfig, w: VisionWeights, batch: number, o: TowerOptions): Graph {
  const { imageSize: S, patchSize: P, width: W } = config.vision;
  const G = Math.floor(S / P),
    T = G * G + 1,
    rows = batch * T,
    E = config.embedDim;
  const g = new GraphBuilder(`vision[B=${batch}]`);
  const pixels = g.input('vision.pixels', [batch, 3, S, S]);
  const patches = g.tensor('vision.patches', [batch * G * G, 3 * P * P]);
  const embed = g.tensor('vision.patch_embed', [batch * G * G, W]);
  const v = config.vision;
  // Without ln_pre the token sequence is the residual stream itself.
  const tokens = g.tensor(v.lnPre ? 'vision.tokens' : 'vision.x', [rows, W]);
  const x = v.lnPre ? g.tensor('vision.x', [rows, W]) : tokens;
  g.op('patchify', 'vision.patchify', { pixels, patches, batch, patch: P, grid: G, imageSize: S });
  g.op('matmul', 'vision.conv1', {
    x: patches,
    w: w.conv,
    y: embed,
    M: batch * G * G,
    N: W,
    K: 3 * P * P,
    wDtype: o.dtype,
  });
  g.op('visionTokens', 'vision.tokens', {
    patchEmbed: embed,
    classEmbedding: w.classEmbedding,
    pos: w.pos,
    y: tokens,
    batch,
    seq: T,
    width: W,
  });
  const eps = v.normEps;
  if (w.lnPre)
    g.op('layerNorm', 'vision.ln_pre', { x: tokens, gain: w.lnPre[0], shift: w.lnPre[1], y: x, rows, cols: W, eps });
  g.checkpoint('vision.ln_pre', x);
  // With class-token pooling only the class token of each image leaves the tower, so the last block finishes
  // just those rows; the mean of the patch tokens needs every row.
  const keep =
    o.exactShortcuts && v.pool === 'tok'
      ? g.constant(
          'vision.class_rows',
          Uint32Array.from({ length: batch }, (_, b) => b * T),
        )
      : undefined;
  const final = recordBlocks(
    g,
    'vision',
    w.blocks,
    x,
    {
      batch,
      seq: T,
      width: W,
      heads: v.heads,
      mlpRatio: v.mlpRatio,
      causal: false,
      quickGelu: config.quickGelu,
      dtype: o.dtype,
      activations: o.activations.vision,
      eps,
    },
    keep,
  );
  const pooled = g.tensor('vision.pooled', [batch, W]);
  const out = g.output(g.tensor('vision.out', [batch, E]));
  const lnPost = { gain: w.lnPost[0], shift: w.lnPost[1], cols: W, eps };
  const average = { batch, seq: T, width: W, first: 1 };
  if (v.pool === 'tok') {
    // ln_post then the class token, or the class token then ln_post (final_ln_after_pool): the same row-wise.
    g.op('layerNorm', 'vision.ln_post', { ...lnPost, x: final, y: pooled, rows: batch, inRowStride: keep ? 1 : T });
  } else if (v.lnAfterPool) {
    const mean = g.tensor('vision.mean', [batch, W]);
    g.op('meanRows', 'vision.avg_pool', { ...average, x: final, y: mean });
    g.op('layerNorm', 'vision.ln_post', { ...lnPost, x: mean, y: pooled, rows: batch });
  } else {
    const normed = g.tensor('vision.ln_post', [rows, W]);
    g.op('layerNorm', 'vision.ln_post', { ...lnPost, x: final, y: normed, rows });
    g.op('meanRows', 'vision.avg_pool', { ...average, x: normed, y: pooled });
  }
  g.checkpoint('vision.pooled', pooled);
  g.op('matmul', 'vision.proj', { x: pooled, w: w.proj, y: out, M: batch, N: E, K: W, wDtype: o.dtype });
  g.checkpoint('vision.out', out);
  return g.finish();
}

/**
 * open_clip's text transformer on token ids [B, seq] (seq ≤ context length) → raw embeddings [B, E].
 * Inputs: `text.ids` [B·seq] and `text.eot_index` [B] (each prompt's pooled row in the flattened sequence: the
 * EOT for argmax pooling, else the first or last position);
 * output: `text.out`. Checkpoints: `text.embed`, `text.blockNN` ([B, seq, W]), `text.pooled`, `text.out`.
 */
export function textGraph(config: ClipConfig, w: TextWeights, batch: number, seq: number, o: TowerOptions): Graph {
  const { width: W } = config.text;
  const rows = batch * seq,
    E = config.embedDim;
  const g = new GraphBuilder(`text[B=${batch},T=${seq}]`);
  const ids = g.input('text.ids', [rows], 'u32');
  const eotIndex = g.input('text.eot_index', [batch], 'u32');
  const t = config.text;
  // embed_cls: the class token is one more table row (id vocabSize, appended by the caller); under the causal mask
  // its row attends to the keys `text.cls_keys` marks.
  const clsKeys = t.embedCls && t.causal ? g.input('text.cls_keys', [rows], 'u32') : undefined;
  const chunks = w.clsEmbedding
    ? [...w.tokenChunks, ...w.clsEmbedding.map((chunk) => ({ ...chunk, rowOffset: t.vocabSize }))]
    : w.tokenChunks;
  const x = g.tensor('text.x', [rows, W]);
  g.op('embedTokens', 'text.embed', {
    ids,
    chunks,
    pos: w.pos,
    y: x,
    rows,
    seq,
    width: W,
    wDtype: o.dtype,
  });
  g.checkpoint('text.embed', x);
  const eps = config.text.normEps;
  const final = recordBlocks(g, 'text', w.blocks, x, {
    batch,
    seq,
    width: W,
    heads: config.text.heads,
    mlpRatio: config.text.mlpRatio,
    causal: config.text.causal,
    quickGelu: config.quickGelu,
    dtype: o.dtype,
    activations: o.activations.text,
    eps,
    lastRowKeys: clsKeys,
  });
  const eotRows = g.tensor('text.eot_rows', [batch, W]);
  const pooled = g.tensor('text.pooled', [batch, W]);
  const out = g.output(g.tensor('text.out', [batch, E]));
  g.op('gatherRows', 'text.eot', { x: final, index: eotIndex, y: eotRows, rows: batch, width: W });
  g.op('layerNorm', 'text.ln_final', {
    x: eotRows,
    gain: w.lnFinal[0],
    shift: w.lnFinal[1],
    y: pooled,
    rows: batch,
    cols: W,
    eps,
  });
  g.checkpoint('text.pooled', pooled);
  g.op('matmul', 'text.proj', {
    x: pooled,
    w: w.proj,
    bias: w.projBias,
    y: out,
    M: batch,
    N: E,
    K: W,
    wDtype: o.dtype,
  });
  g.checkpoint('text.out', out);
  return g.finish();
}

interface BlockShape {
  batch: number;
  seq: number;
  width: number;
  heads: number;
  mlpRatio: number;
  causal: boolean;
  quickGelu: boolean;
  dtype: ComputeDtype;
  /** The dtype of ln_1, qkv, attn, ln_2 and the MLP's hidden rows. */
  activations: FloatDtype;
  /** LayerNorm eps of ln_1 and ln_2. */
  eps: number;
  /** Per row, 1 where the last row of its sequence may attend (embed_cls's class token); others stay causal. */
  lastRowKeys?: Tensor;
}

/**
 * x ← x + attn(ln_1(x)); x ← x + mlp(ln_2(x)) for every block, residual adds fused into the matmuls
 * (LayerScale's gammas are folded into out_proj and c_proj at load: schema.ts, LayerScaleSpec). Each
 * block's intermediates are tensors of their own, so the memory planner can let short-lived ones share.
 * With `keep`, the last block finishes only those rows (the class tokens): attention still reads every
 * row's keys and values, then out_proj and the MLP run on the kept rows alone. That is exact, since every
 * other kernel computes each row on its own. Returns the tensor holding the final rows.
 */
function recordBlocks(
  g: GraphBuilder,
  tower: string,
  blocks: readonly Block[],
  x: Tensor,
  a: BlockShape,
  keep?: Tensor,
): Tensor {
  const rows = a.batch * a.seq,
    W = a.width,
    hidden = mlpWidth(W, a.mlpRatio);
  const activation = a.quickGelu ? 'quick_gelu' : 'gelu';
  const wDtype = a.dtype;
  const act = a.activations;
  if (act === 'f16' && a.lastRowKeys) throw new Error(`${tower}: the class-token attention takes f32 activations only`);
  blocks.forEach((b, i) => {
    const p = `${tower}.block${String(i).padStart(2, '0')}`;
    const h = g.tensor(`${p}.ln_1`, [rows, W], act);
    const qkv = g.tensor(`${p}.qkv`, [rows, 3 * W], act);
    let attn = g.tensor(`${p}.attn`, [rows, W], act);
    g.op('layerNorm', `${p}.ln_1`, {
      x,
      gain: b.ln1[0],
      shift: b.ln1[1],
      y: h,
      rows,
      cols: W,
      eps: a.eps,
      yDtype: act,
    });
    g.op('matmul', `${p}.attn.in_proj`, {
      x: h,
      w: b.inProj,
      bias: b.inProjBias,
      y: qkv,
      M: rows,
      N: 3 * W,
      K: W,
      wDtype,
      xDtype: act,
      yDtype: act,
    });
    g.op('attention', `${p}.attn`, {
      qkv,
      out: attn,
      batch: a.batch,
      seq: a.seq,
      heads: a.heads,
      headDim: W / a.heads,
      causal: a.causal,
      dtype: act,
    });
    if (a.lastRowKeys)
      g.op('attentionLastRow', `${p}.attn.cls`, {
        qkv,
        allowed: a.lastRowKeys,
        out: attn,
        batch: a.batch,
        seq: a.seq,
        heads: a.heads,
        headDim: W / a.heads,
      });
    let n = rows,
      name = p;
    if (keep && i === blocks.length - 1) {
      n = a.batch;
      name = `${p}.kept`;
      const keptAttn = g.tensor(`${p}.kept.attn`, [n, W], act);
      const keptX = g.tensor(`${p}.kept.x`, [n, W]);
      g.op('gatherRows', `${p}.keep.attn`, { x: attn, index: keep, y: keptAttn, rows: n, width: W, dtype: act });
      g.op('gatherRows', `${p}.keep.x`, { x, index: keep, y: keptX, rows: n, width: W });
      [attn, x] = [keptAttn, keptX];
    }
    const h2 = g.tensor(`${p}.ln_2`, [n, W], act);
    const mlp = g.tensor(`${p}.mlp`, [n, hidden], act);
    g.op('matmul', `${p}.attn.out_proj`, {
      x: attn,
      w: b.outProj,
      bias: b.outProjBias,
      y: x,
      M: n,
      N: W,
      K: W,
      accumulate: true,
      wDtype,
      xDtype: act,
    });
    g.op('layerNorm', `${p}.ln_2`, {
      x,
      gain: b.ln2[0],
      shift: b.ln2[1],
      y: h2,
      rows: n,
      cols: W,
      eps: a.eps,
      yDtype: act,
    });
    g.op('matmul', `${p}.mlp.c_fc`, {
      x: h2,
      w: b.fc,
      bias: b.fcBias,
      y: mlp,
      M: n,
      N: hidden,
      K: W,
      activation,
      wDtype,
      xDtype: act,
      yDtype: act,
    });
    g.op('matmul', `${p}.mlp.c_proj`, {
      x: mlp,
      w: b.proj,
      bias: b.projBias,
      y: x,
      M: n,
      N: W,
      K: hidden,
      accumulate: true,
      wDtype,
      xDtype: act,
    });
    g.checkpoint(name, x, n * W * F32);
  });
  return x;
}
