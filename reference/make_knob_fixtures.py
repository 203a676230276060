"""Tiny random-weight open_clip checkpoints that exercise the config knobs beyond WhyLesionCLIP's (layer scale,
avg pooling, no ln_pre, text pooling, no causal mask, text projection bias, other image sizes, patch sizes and
context lengths, LayerNorm eps, custom_text with embed_cls and pad_id), with what real open_clip 2.24 computes from them: the fixtures of
test/openclip-knobs.test.ts.

    WHYLESION_OPENCLIP_PATH=/path/to/open_clip/src:/path/to/ftfy:/path/to/wcwidth \\
      /usr/bin/python3 reference/make_knob_fixtures.py --out test/fixtures/openclip-knobs

open_clip is not a dependency: WHYLESION_OPENCLIP_PATH (a PYTHONPATH) names open_clip's src/ at v2.24.0. Each
model is built by open_clip.create_model from its config (registered under a local name), every parameter
drawn at random (seeded), rounded to float16 and loaded back with load_state_dict, so the F16 file the test
reads holds exactly the weights open_clip ran in float32. Layer-norm gains and layer-scale gammas are drawn
around 1 and 0.7, far from open_clip's initial values, so a gamma dropped or misapplied moves the output.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import write_safetensors  # noqa: E402

VOCAB = 1000  # a small table keeps the files small; ids are drawn, not tokenized
EMBED = 24


def vision(**knobs):
    return {"layers": 2, "width": 32, "head_width": 16, **knobs}


def text(**knobs):
    return {"vocab_size": VOCAB, "width": 32, "heads": 2, "layers": 2, **knobs}


# Each fixture combines several knobs; together they cover every knob the engine reads.
FIXTURES = {
    "ls-avg-projbias": {
        "embed_dim": EMBED,
        "vision_cfg": vision(image_size=64, patch_size=16, ls_init_value=1e-5, pool_type="avg",
                             norm_kwargs={"eps": 1e-6}),
        "text_cfg": text(context_length=16, ls_init_value=1e-5, proj_bias=True, pad_id=0),
    },
    "nolnpre-avgafter-last": {
        "embed_dim": EMBED,
        "quick_gelu": True,
        "vision_cfg": vision(image_size=64, patch_size=32, no_ln_pre=True, pool_type="avg", final_ln_after_pool=True),
        "text_cfg": text(context_length=12, no_causal_mask=True, pool_type="last", norm_kwargs={"eps": 1e-6}),
    },
    "p14-tok-first": {
        "embed_dim": EMBED,
        "vision_cfg": vision(image_size=56, patch_size=14, final_ln_after_pool=True, pos_embed_type="sin_cos_2d"),
        "text_cfg": text(context_length=20, pool_type="first"),
    },
    "nocausal-argmax": {
        "embed_dim": EMBED,
        "quick_gelu": True,
        "vision_cfg": vision(image_size=32, patch_size=16, mlp_ratio=2.5),
        "text_cfg": text(context_length=24, no_causal_mask=True, pool_type="argmax", mlp_ratio=3),
    },
    "causal-last": {
        "embed_dim": EMBED,
        "vision_cfg": vision(image_size=32, patch_size=16, ls_init_value=0.1, no_ln_pre=True),
        "text_cfg": text(context_length=10, pool_type="last", ls_init_value=0.1, proj_bias=True),
    },
    # A CustomTextCLIP with the native text tower (saved under text.*): CoCa's appended class token, whose attention
    # skips keys after padding (build_cls_mask), and its pad id.
    "customtext-embedcls": {
        "embed_dim": EMBED,
        "custom_text": True,
        "vision_cfg": vision(image_size=32, patch_size=8),
        "text_cfg": text(context_length=12, embed_cls=True, pad_id=0),
    },
}


def randomize(model, torch, generator):
    """Every parameter redrawn: gains near 1, gammas near 0.7, the rest normal at the tensor's init scale."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.copy_(0.7 + 0.3 * torch.rand(p.shape, generator=generator))
            elif p.dim() == 1 and name.split(".")[-2].startswith("ln") and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=generator))
            elif name == "logit_scale":
                p.fill_(float(np.log(100)))
            elif p.dim() == 1 and name.endswith("bias"):
                p.copy_(0.05 * torch.randn(p.shape, generator=generator))
            else:
                fan_in = p.shape[-1] if p.dim() >= 2 else p.shape[0]
                if p.dim() == 4:
                    fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=generator) * fan_in ** -0.5)
            # Round to f16: the stored file holds exactly these values.
            p.copy_(p.half().float())


def tokens_for(rng, context_length, count):
    """SOT, random ids, EOT (vocab-1, the largest id, as argmax pooling needs), zero padding; one row fills the context."""
    rows = np.zeros((count, context_length), dtype=np.int64)
    for i in range(count):
        length = context_length if i == count - 1 else int(rng.integers(2, context_length))
        rows[i, 0] = VOCAB - 2
        rows[i, 1:length - 1] = rng.integers(1, VOCAB - 2, size=length - 2)
        rows[i, length - 1] = VOCAB - 1
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=20261206)
    args = parser.parse_args()
    path = os.environ.get("WHYLESION_OPENCLIP_PATH")
    if not path:
        sys.exit("Set WHYLESION_OPENCLIP_PATH to open_clip 2.24's src/ (plus ftfy and wcwidth), a PYTHONPATH.")
    sys.path[:0] = path.split(os.pathsep)
    import torch
    import open_clip
    from open_clip.factory import _MODEL_CONFIGS
    from open_clip.version import __version__

    if __version__ != "2.24.0":
        sys.exit(f"open_clip {__version__} found; these fixtures are open_clip 2.24.0's")
    torch.set_num_threads(1)
    for index, (name, model_cfg) in enumerate(FIXTURES.items()):
        _MODEL_CONFIGS[f"whylesion-{name}"] = model_cfg
        model = open_clip.create_model(f"whylesion-{name}", pretrained=None)
        model.eval()
        generator = torch.Generator().manual_seed(args.seed + index)
        randomize(model, torch, generator)
        state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
        # The F16 file, loaded back strictly: what open_clip computes from is what the engine reads.
        model.load_state_dict({k: torch.from_numpy(v.astype(np.float16).astype(np.float32)) for k, v in state.items()})
        rng = np.random.default_rng(args.seed + index)
        size = model_cfg["vision_cfg"]["image_size"]
        pixels = rng.standard_normal((2, 3, size, size)).astype(np.float32)
        tokens = tokens_for(rng, model_cfg["text_cfg"]["context_length"], 3)
        with torch.no_grad():
            image = model.encode_image(torch.from_numpy(pixels)).numpy()
            text_out = model.encode_text(torch.from_numpy(tokens)).numpy()
        folder = os.path.join(args.out, name)
        os.makedirs(folder, exist_ok=True)
        write_safetensors(os.path.join(folder, "open_clip_model.safetensors"), state, dtype="f16")
        with open(os.path.join(folder, "open_clip_config.json"), "w") as f:
            json.dump({"model_cfg": model_cfg}, f, indent=2)
        np.save(os.path.join(folder, "pixels.npy"), pixels)
        np.save(os.path.join(folder, "image_embeddings_raw.npy"), image.astype(np.float32))
        np.save(os.path.join(folder, "text_embeddings_raw.npy"), text_out.astype(np.float32))
        with open(os.path.join(folder, "tokens.json"), "w") as f:
            json.dump({"tokens": tokens.tolist(), "open_clip": __version__, "torch": torch.__version__}, f)
        print(name, sum(v.size for v in state.values()), "parameters", image.shape, text_out.shape)


if __name__ == "__main__":
    main()
