import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { BUILTIN_CONFIGS, parseClipConfig } from '../src/model/config.js';
import { checkTensors, expectedTensors } from '../src/model/layout.js';
import { SafetensorsFile } from '../src/io/source.js';

const TINY = join(import.meta.dirname, 'fixtures', 'openclip-tiny', 'model');

function refusal(raw: unknown): string {
  try {
    parseClipConfig(raw, 'cfg.json');
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    return (error as Error).message;
  }
  throw new Error('config was accepted');
}

describe('open_clip config', () => {
  it('fills open_clip defaults into a bare model_cfg', () => {
    expect(parseClipConfig({ embed_dim: 512, vision_cfg: {}, text_cfg: {} })).toEqual({
      embedDim: 512,
      quickGelu: false,
      vision: {
        imageSize: 224,
        patchSize: 16,
        width: 768,
        layers: 12,
        headWidth: 64,
        heads: 12,
        mlpRatio: 4,
        layerScale: false,
        lnPre: true,
        pool: 'tok',
        lnAfterPool: false,
        normEps: 1e-5,
      },
      text: {
        contextLength: 77,
        vocabSize: 49408,
        width: 512,
        heads: 8,
        layers: 12,
        mlpRatio: 4,
        layerScale: false,
        pool: 'argmax',
        causal: true,
        projBias: false,
        normEps: 1e-5,
        customText: false,
        embedCls: false,
        padId: 0,
      },
      preprocess: {
        mean: [0.48145466, 0.4578275, 0.40821073],
        std: [0.26862954, 0.26130258, 0.27577711],
        imageSize: 224,
      },
    });
  });

  it('reads the built-in ViT-L-14 (WhyLesionCLIP) and the Hub-style tiny config', async () => {
    const large = parseClipConfig(BUILTIN_CONFIGS['ViT-L-14']);
    expect(large.embedDim).toBe(768);
    expect(large.vision).toEqual({
      imageSize: 224,
      patchSize: 14,
      width: 1024,
      layers: 24,
      headWidth: 64,
      heads: 16,
      mlpRatio: 4,
      layerScale: false,
      lnPre: true,
      pool: 'tok',
      lnAfterPool: false,
      normEps: 1e-5,
    });
    expect(large.text).toEqual({
      contextLength: 77,
      vocabSize: 49408,
      width: 768,
      heads: 12,
      layers: 12,
      mlpRatio: 4,
      layerScale: false,
      pool: 'argmax',
      causal: true,
      projBias: false,
      normEps: 1e-5,
      customText: false,
      embedCls: false,
      padId: 0,
    });
    expect(parseClipConfig(BUILTIN_CONFIGS['ViT-B-32']).vision.patchSize).toBe(32);
    const tiny = parseClipConfig(JSON.parse(await readFile(join(TINY, 'open_clip_config.json'), 'utf8')));
    expect(tiny.vision.heads).toBe(2);
    expect(tiny.preprocess.imageSize).toBe(224);
    const quick = parseClipConfig({
      model_cfg: { embed_dim: 8, quick_gelu: true, vision_cfg: { patch_dropout: 0.5, no_ln_pre: false } },
      preprocess_cfg: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], size: 224 },
    });
    expect(quick.quickGelu).toBe(true);
    expect(quick.preprocess.mean).toEqual([0.5, 0.5, 0.5]);
  });

  it('reads every native-tower knob open_clip 2.24 has', () => {
    const cfg = parseClipConfig({
      embed_dim: 8,
      vision_cfg: {
        image_size: 336,
        patch_size: 14,
        ls_init_value: 1e-5,
        no_ln_pre: true,
        pool_type: 'avg',
        final_ln_after_pool: true,
        pos_embed_type: 'sin_cos_2d',
        norm_kwargs: { eps: 1e-6 },
      },
      text_cfg: {
        context_length: 64,
        ls_init_value: 0.1,
        pool_type: 'last',
        no_causal_mask: true,
        proj_bias: true,
        pad_id: 1,
        final_ln_after_pool: true,
        norm_kwargs: { eps: 1e-6 },
      },
    });
    expect(cfg.vision).toMatchObject({
      imageSize: 336,
      patchSize: 14,
      layerScale: true,
      lnPre: false,
      pool: 'avg',
      lnAfterPool: true,
      normEps: 1e-6,
    });
    expect(cfg.text).toMatchObject({
      contextLength: 64,
      layerScale: true,
      pool: 'last',
      causal: false,
      projBias: true,
      normEps: 1e-6,
    });
    expect(parseClipConfig({ embed_dim: 8, text_cfg: { pool_type: 'first' } }).text.pool).toBe('first');
  });

  it('refuses every tower it does not run in one sentence, naming each knob and why', () => {
    expect(
      refusal({ embed_dim: 8, vision_cfg: { timm_model_name: 'convnext_base' }, text_cfg: { hf_model_name: 'bert' } }),
    ).toBe(
      'cfg.json uses unsupported settings: vision_cfg.timm_model_name="convnext_base" (a timm image tower), text_cfg.hf_model_name="bert" (a Hugging Face transformers text tower); whylesion runs open_clip\'s native VisionTransformer and TextTransformer towers.',
    );
    expect(refusal({ embed_dim: 8, vision_cfg: { layers: [3, 4, 6, 3] } })).toMatch(
      /vision_cfg\.layers=\[3,4,6,3\] \(a ModifiedResNet\)/,
    );
    expect(
      refusal({
        embed_dim: 8,
        vision_cfg: {
          attentional_pool: true,
          pool_type: 'none',
          output_tokens: true,
          norm_kwargs: { eps: 1e-6, bias: false },
        },
      }),
    ).toMatch(
      /vision_cfg\.attentional_pool=true \(CoCa's attentional pooler\), vision_cfg\.output_tokens=true \(token outputs besides the pooled embedding\), vision_cfg\.pool_type="none" \(whylesion reads "tok" or "avg"\), vision_cfg\.norm_kwargs\.bias \(whylesion reads only LayerNorm's eps\)/,
    );
    expect(
      refusal({
        embed_dim: 8,
        text_cfg: { embed_cls: true, pool_type: 'mean', act_kwargs: { approximate: 'tanh' } },
      }),
    ).toMatch(
      /text_cfg\.act_kwargs=\{"approximate":"tanh"\} \(activation arguments\), text_cfg\.pool_type="mean" \(whylesion reads "argmax" or "last" or "first"\), text_cfg\.embed_cls=true without model_cfg\.custom_text \(open_clip's CLIP cannot run it\)/,
    );
    expect(
      parseClipConfig({ embed_dim: 8, custom_text: true, text_cfg: { embed_cls: true, pad_id: 1 } }).text,
    ).toMatchObject({ customText: true, embedCls: true, padId: 1 });
    expect(refusal({ embed_dim: 8, custom_text: true, text_cfg: { hf_model_name: 'xlm-roberta-base' } })).toMatch(
      /text_cfg\.hf_model_name="xlm-roberta-base" \(a Hugging Face transformers text tower\)/,
    );
    expect(refusal({ embed_dim: 8, init_logit_bias: -10, mystery: 1 })).toMatch(
      /model_cfg\.init_logit_bias=-10 \(a SigLIP logit bias, .*\), model_cfg\.mystery \(unknown field\)/,
    );
    expect(refusal({ embed_dim: 8, multimodal_cfg: { width: 512 } })).toMatch(
      /multimodal_cfg=\{"width":512\} \(CoCa's multimodal text decoder\)/,
    );
    expect(refusal({ embed_dim: 8, vision_cfg: { width: 100, head_width: 64 } })).toMatch(
      /vision width 100, not a multiple of head_width 64/,
    );
    expect(refusal({ embed_dim: 8, vision_cfg: { image_size: [224, 192] } })).toMatch(
      /non-square vision_cfg\.image_size=\[224,192\]/,
    );
    expect(refusal([1, 2])).toMatch(/cfg\.json is not a JSON object/);
    expect(refusal({ vision_cfg: {} })).toMatch(/has no embed_dim/);
  });

  it('accepts the largest real open_clip CLIPs (ViT-bigG-14, ViT-e-14, ViT-H-14-378)', () => {
    const bigG = parseClipConfig({
      embed_dim: 1280,
      vision_cfg: { image_size: 224, layers: 48, width: 1664, head_width: 104, mlp_ratio: 4.9231, patch_size: 14 },
      text_cfg: { context_length: 77, vocab_size: 49408, width: 1280, heads: 20, layers: 32 },
    });
    expect([bigG.vision.layers, bigG.vision.width, bigG.text.layers, bigG.text.width]).toEqual([48, 1664, 32, 1280]);
    const e = parseClipConfig({
      embed_dim: 1280,
      vision_cfg: { image_size: 224, layers: 56, width: 1792, head_width: 112, mlp_ratio: 8.5715, patch_size: 14 },
      text_cfg: { width: 1280, heads: 20, layers: 36 },
    });
    expect(e.vision.layers).toBe(56);
    expect(
      parseClipConfig({
        embed_dim: 1024,
        vision_cfg: { image_size: 378, layers: 32, width: 1280, head_width: 80, patch_size: 14 },
      }).vision.imageSize,
    ).toBe(378);
  });

  it('refuses sizes no real CLIP has in one sentence, before building anything', () => {
    const started = performance.now();
    expect(refusal({ embed_dim: 8, vision_cfg: { layers: 1_000_000 } })).toBe(
      'cfg.json has vision_cfg.layers=1000000, more than any real CLIP (ViT-L-14 24, ViT-bigG-14 48, ViT-e-14 56; whylesion accepts up to 128); fix or re-download the config.',
    );
    expect(refusal({ embed_dim: 8, text_cfg: { layers: 129 } })).toMatch(
      /has text_cfg\.layers=129, more than any real CLIP/,
    );
    expect(refusal({ embed_dim: 8, vision_cfg: { width: 2 ** 20, head_width: 64 } })).toMatch(
      /has vision_cfg\.width=1048576, more than any real CLIP \(ViT-L-14 1024, ViT-bigG-14 1664/,
    );
    expect(refusal({ embed_dim: 8, text_cfg: { width: 16384, heads: 8 } })).toMatch(/has text_cfg\.width=16384,/);
    expect(refusal({ embed_dim: 8, text_cfg: { context_length: 100_000 } })).toMatch(
      /has text_cfg\.context_length=100000, more than any real CLIP \(64 to 77/,
    );
    expect(refusal({ embed_dim: 8, text_cfg: { vocab_size: 1e9 } })).toMatch(/has text_cfg\.vocab_size=1000000000,/);
    expect(refusal({ embed_dim: 1e6 })).toMatch(/has embed_dim=1000000,/);
    expect(refusal({ embed_dim: 8, vision_cfg: { image_size: 4096, patch_size: 64 } })).toMatch(
      /has vision_cfg\.image_size=4096,/,
    );
    expect(refusal({ embed_dim: 8, vision_cfg: { patch_size: 128, image_size: 1024 } })).toMatch(
      /has vision_cfg\.patch_size=128,/,
    );
    expect(refusal({ embed_dim: 8, vision_cfg: { patch_size: 2, image_size: 1024 } })).toMatch(
      /has 262144 image patches \(\(image_size \/ patch_size\)²\), more than any real CLIP/,
    );
    expect(refusal({ embed_dim: 8, vision_cfg: { mlp_ratio: 1000 } })).toMatch(/has vision_cfg\.mlp_ratio=1000,/);
    expect(refusal({ model_cfg: { embed_dim: 8 }, preprocess_cfg: { size: 100_000 } })).toMatch(
      /has preprocess_cfg\.size=100000,/,
    );
    expect(performance.now() - started).toBeLessThan(5000); // a hang guard only: each refusal reads a few fields
  });
});

describe('state-dict layout', () => {
  it('lists exactly the tensors and shapes open_clip saved for the tiny reference model', async () => {
    const cfg = parseClipConfig(JSON.parse(await readFile(join(TINY, 'open_clip_config.json'), 'utf8')));
    const file = await SafetensorsFile.open(join(TINY, 'open_clip_model.safetensors'));
    const saved = new Map([...file.tensors].map(([name, t]) => [name, t.shape]));
    await file.close();
    // Same keys in the same (state_dict) order, same shapes; no attn_mask buffer.
    expect([...expectedTensors(cfg)]).toEqual([...saved]);
    expect(() => checkTensors(cfg, saved)).not.toThrow();
  });

  it('sizes ViT-L-14 like open_clip: 427.6M parameters', () => {
    const layout = expectedTensors(parseClipConfig(BUILTIN_CONFIGS['ViT-L-14']));
    expect(layout.size).toBe(14 + 12 * (24 + 12));
    expect(layout.get('visual.positional_embedding')).toEqual([257, 1024]);
    expect(layout.get('visual.transformer.resblocks.23.mlp.c_fc.weight')).toEqual([4096, 1024]);
    const parameters = [...layout.values()].reduce((sum, shape) => sum + shape.reduce((a, b) => a * b, 1), 0);
    expect(parameters).toBe(427_616_513); // open_clip's ViT-L-14 parameter count
  });

  it('reports missing, unexpected and misshapen tensors together, like a strict load_state_dict', () => {
    const cfg = parseClipConfig(BUILTIN_CONFIGS['ViT-B-32']);
    const available = new Map<string, readonly number[]>(expectedTensors(cfg));
    available.delete('logit_scale');
    available.delete('ln_final.bias');
    available.set('attn_mask', [77, 77]);
    available.set('visual.proj', [768, 768]);
    for (let i = 0; i < 12; i++) available.delete(`transformer.resblocks.${i}.ln_1.bias`);
    let message = '';
    try {
      checkTensors(cfg, available, 'w.safetensors');
    } catch (error) {
      expect(error).toBeInstanceOf(UserError);
      message = (error as Error).message;
    }
    expect(message).toBe(
      'w.safetensors does not match its config: tensors 14 missing (logit_scale, transformer.resblocks.0.ln_1.bias, transformer.resblocks.1.ln_1.bias, ' +
        'transformer.resblocks.2.ln_1.bias, transformer.resblocks.3.ln_1.bias, transformer.resblocks.4.ln_1.bias, transformer.resblocks.5.ln_1.bias, ' +
        'transformer.resblocks.6.ln_1.bias and 6 more); 1 unexpected (attn_mask); 1 with the wrong shape (visual.proj is [768,768], expected [768,512]); ' +
        'use the open_clip_config.json that came with these weights.',
    );
  });
});
