#!/usr/bin/python3
"""Writes a random-weight open_clip checkpoint folder (open_clip_config.json + open_clip_model.safetensors).

Keys and shapes are exactly those of open_clip's CLIP.state_dict() for the standard ViT + text
transformer; initial scales follow open_clip's init (width^-1/2 embeddings/projections, depth-scaled
residual projections), with layer-norm gains around 1 ± 0.1 and small biases so every parameter matters.

Usage: make_checkpoint.py --config CONFIG.json --seed N --out DIR [--dtype f32|f16]
CONFIG.json is an open_clip model config ({"embed_dim", "vision_cfg", "text_cfg", "quick_gelu"}),
optionally wrapped as {"model_cfg": ..., "preprocess_cfg": ...}.
"""
import argparse
import json
import math
import os
import sys

import numpy as np

from clip_reference import load_config
from safetensors_io import write_safetensors

OPENAI_PREPROCESS = {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]}


def random_tower_blocks(rng, prefix, width, layers, mlp_ratio):
    """Resblock weights with open_clip's text-tower init scales (used for both towers)."""
    hidden = int(width * mlp_ratio)
    attn_std = width ** -0.5
    proj_std = width ** -0.5 * (2 * layers) ** -0.5
    fc_std = (2 * width) ** -0.5
    tensors = {}
    for i in range(layers):
        p = f"{prefix}.{i}"
        tensors.update({
            f"{p}.ln_1.weight": 1 + 0.1 * rng.standard_normal(width),
            f"{p}.ln_1.bias": 0.02 * rng.standard_normal(width),
            f"{p}.attn.in_proj_weight": attn_std * rng.standard_normal((3 * width, width)),
            f"{p}.attn.in_proj_bias": 0.02 * rng.standard_normal(3 * width),
            f"{p}.attn.out_proj.weight": proj_std * rng.standard_normal((width, width)),
            f"{p}.attn.out_proj.bias": 0.02 * rng.standard_normal(width),
            f"{p}.ln_2.weight": 1 + 0.1 * rng.standard_normal(width),
            f"{p}.ln_2.bias": 0.02 * rng.standard_normal(width),
            f"{p}.mlp.c_fc.weight": fc_std * rng.standard_normal((hidden, width)),
            f"{p}.mlp.c_fc.bias": 0.02 * rng.standard_normal(hidden),
            f"{p}.mlp.c_proj.weight": proj_std * rng.standard_normal((width, hidden)),
            f"{p}.mlp.c_proj.bias": 0.02 * rng.standard_normal(width),
        })
    return tensors


def random_checkpoint(embed_dim, vision, text, seed):
    rng = np.random.default_rng(seed)
    vw, tw = vision["width"], text["width"]
    grid = vision["image_size"] // vision["patch_size"]
    patch = vision["patch_size"]
    conv_bound = 1 / math.sqrt(3 * patch * patch)  # nn.Conv2d's default kaiming-uniform bound
    tensors = {
        "positional_embedding": 0.01 * rng.standard_normal((text["context_length"], tw)),
        "text_projection": tw ** -0.5 * rng.standard_normal((tw, embed_dim)),
        "logit_scale": np.array(math.log(100.0)),
        "visual.class_embedding": vw ** -0.5 * rng.standard_normal(vw),
        "visual.positional_embedding": vw ** -0.5 * rng.standard_normal((grid * grid + 1, vw)),
        "visual.proj": vw ** -0.5 * rng.standard_normal((vw, embed_dim)),
        "visual.conv1.weight": rng.uniform(-conv_bound, conv_bound, (vw, 3, patch, patch)),
        "visual.ln_pre.weight": 1 + 0.1 * rng.standard_normal(vw),
        "visual.ln_pre.bias": 0.02 * rng.standard_normal(vw),
    }
    tensors.update(random_tower_blocks(rng, "visual.transformer.resblocks", vw, vision["layers"], vision["mlp_ratio"]))
    tensors.update({
        "visual.ln_post.weight": 1 + 0.1 * rng.standard_normal(vw),
        "visual.ln_post.bias": 0.02 * rng.standard_normal(vw),
    })
    tensors.update(random_tower_blocks(rng, "transformer.resblocks", tw, text["layers"], text["mlp_ratio"]))
    tensors.update({
        "token_embedding.weight": 0.02 * rng.standard_normal((text["vocab_size"], tw)),
        "ln_final.weight": 1 + 0.1 * rng.standard_normal(tw),
        "ln_final.bias": 0.02 * rng.standard_normal(tw),
    })
    return {name: np.asarray(value, dtype=np.float32) for name, value in tensors.items()}


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="open_clip model config JSON")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True, help="checkpoint folder to write")
    parser.add_argument("--dtype", choices=["f32", "f16"], default="f32", help="storage dtype of every tensor")
    args = parser.parse_args(argv)

    with open(args.config) as f:
        raw = json.load(f)
    hub_config = raw if "model_cfg" in raw else {"model_cfg": raw, "preprocess_cfg": OPENAI_PREPROCESS}
    os.makedirs(args.out, exist_ok=True)
    config_path = os.path.join(args.out, "open_clip_config.json")
    with open(config_path, "w") as f:
        json.dump(hub_config, f, indent=2)
        f.write("\n")
    # Parse back through the reference's loader so both scripts agree on defaults.
    embed_dim, vision, text, _, _ = load_config(args.out)
    tensors = random_checkpoint(embed_dim, vision, text, args.seed)
    write_safetensors(os.path.join(args.out, "open_clip_model.safetensors"), tensors, args.dtype)


if __name__ == "__main__":
    main(sys.argv[1:])
