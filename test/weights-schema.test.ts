import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { parseClipConfig } from '../src/model/config.js';
import { checkTensors } from '../src/model/layout.js';
import { clipSchema } from '../src/model/schema.js';
import { uploadClipWeights, type ComputeDtype } from '../src/model/weights.js';
import { encodeSafetensors, SafetensorsSource } from '../src/io/safetensors.js';
import { synthesizeCheckpoint } from '../src/io/synth.js';
import { KernelPolicy } from '../src/kernels/policy.js';
import { Gpu } from '../src/runtime/gpu.js';

// Small, with towers of different depth and MLP ratio so a block or width mixed up between towers shows.
const CONFIG = parseClipConfig({
  model_cfg: {
    embed_dim: 16,
    vision_cfg: { image_size: 32, layers: 2, width: 64, head_width: 32, patch_size: 8 },
    text_cfg: { context_length: 16, vocab_size: 100, width: 32, heads: 2, layers: 3, mlp_ratio: 2 },
  },
});

async function synthesizedSource(): Promise<SafetensorsSource> {
  const tensors = synthesizeCheckpoint(CONFIG, 11, 'F32').map((t) => ({ ...t, data: t.data() }));
  return SafetensorsSource.fromBytes(encodeSafetensors(tensors), 'the synthetic checkpoint');
}

let gpu: Gpu;
beforeAll(async () => {
  gpu = await Gpu.create();
});
afterAll(() => gpu.destroy());

describe('the open_clip schema', () => {
  it('a synthesized checkpoint passes the layout check, and one tensor short fails it', async () => {
    const source = await synthesizedSource();
    const shapes = new Map([...source.tensors].map(([name, t]) => [name, t.shape]));
    expect(shapes.size).toBe(14 + 12 * (2 + 3));
    expect(shapes.get('transformer.resblocks.2.mlp.c_fc.weight')).toEqual([64, 32]);
    expect(shapes.get('visual.transformer.resblocks.1.mlp.c_fc.weight')).toEqual([256, 64]);
    expect(() => checkTensors(CONFIG, shapes)).not.toThrow();
    shapes.delete('visual.ln_post.bias');
    expect(() => checkTensors(CONFIG, shapes, 'w.safetensors')).toThrow(UserError);
    await source.close();
  });

  it.each<ComputeDtype>(['f32', 'f16'])(
    'the %s loader uploads every schema tensor exactly once, counting up to the schema size',
    async (dtype) => {
      const source = await synthesizedSource();
      const names = clipSchema(CONFIG).tensors.map((spec) => spec.name);
      const calls: { name: string; index: number; count: number }[] = [];
      const weights = await uploadClipWeights(KernelPolicy.create(gpu), CONFIG, source, dtype, (name, index, count) =>
        calls.push({ name, index, count }),
      );
      expect(calls.map((c) => c.index)).toEqual(names.map((_, i) => i + 1));
      expect(calls.every((c) => c.count === names.length)).toBe(true);
      expect(calls.map((c) => c.name).sort()).toEqual([...names].sort());
      expect(weights.vision.blocks).toHaveLength(2);
      expect(weights.text.blocks).toHaveLength(3);
      expect(weights.logitScale).toBe(Math.exp(Math.fround(Math.log(100))));
      weights.scope.destroy();
      await source.close();
    },
  );

  it('puts each f32 tensor in the field of the engine weights that stands for it', async () => {
    const source = await synthesizedSource();
    const w = await uploadClipWeights(KernelPolicy.create(gpu), CONFIG, source, 'f32');
    const [vb, tb] = [w.vision.blocks[1], w.text.blocks[2]];
    if (vb === undefined || tb === undefined) throw new Error('missing vb, tb');
    const fields: [GPUBuffer, string][] = [
      [w.vision.classEmbedding, 'visual.class_embedding'],
      [w.vision.pos, 'visual.positional_embedding'],
      [w.vision.lnPre![0], 'visual.ln_pre.weight'],
      [w.vision.lnPost[1], 'visual.ln_post.bias'],
      [vb.ln1[0], 'visual.transformer.resblocks.1.ln_1.weight'],
      [vb.ln2[1], 'visual.transformer.resblocks.1.ln_2.bias'],
      [vb.inProjBias, 'visual.transformer.resblocks.1.attn.in_proj_bias'],
      [vb.fcBias, 'visual.transformer.resblocks.1.mlp.c_fc.bias'],
      [w.text.pos, 'positional_embedding'],
      [w.text.lnFinal[0], 'ln_final.weight'],
      [tb.ln1[1], 'transformer.resblocks.2.ln_1.bias'],
      [tb.ln2[0], 'transformer.resblocks.2.ln_2.weight'],
      [tb.outProjBias, 'transformer.resblocks.2.attn.out_proj.bias'],
      [tb.projBias, 'transformer.resblocks.2.mlp.c_proj.bias'],
      [w.text.tokenChunks[0]!.buffer, 'token_embedding.weight'],
    ];
    const expected = await Promise.all(fields.map(([, name]) => source.readF32(name)));
    const read = await gpu.run(
      'readback',
      [],
      fields.map(([buffer], i) => ({ buffer, bytes: expected[i]!.byteLength })),
    );
    fields.forEach(([, name], i) => {
      expect(new Float32Array(read[i]!), name).toEqual(expected[i]);
    });
    expect(w.text.tokenChunks).toEqual([{ buffer: w.text.tokenChunks[0]!.buffer, rowOffset: 0, rows: 100 }]);
    w.scope.destroy();
    await source.close();
  });
});
