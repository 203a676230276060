"""Converts an open_clip checkpoint folder into transformers' CLIPModel layout, without transformers.

The tensor names and transposes follow transformers' own
src/transformers/models/clip/convert_clip_original_pytorch_to_hf.py (copy_attn_layer splits in_proj into
q/k/v_proj, copy_text_model_and_projection / copy_vison_model_and_projection store text_projection and
visual.proj transposed as Linear weights, pre_layrnorm <- ln_pre, post_layernorm <- ln_post,
final_layer_norm <- ln_final). Writes config.json and preprocessor_config.json as transformers 4.x writes
them for CLIPModel / CLIPImageProcessor, model.safetensors (with the int64 position_ids buffers older
transformers saved), the tokenizer's vocab.json + merges.txt made from open_clip's bpe_simple_vocab_16e6.txt.gz,
and with --bin a torch.save'd pytorch_model.bin of the same state dict.

/usr/bin/python3 reference/make_hf_clip.py --model test/fixtures/openclip-tiny/model \\
    --vocab assets/bpe_simple_vocab_16e6.txt.gz --out /tmp/hf-clip-tiny [--bin]   (the tests do this: hfClipTiny() in test/helpers.ts)
"""
import argparse
import gzip
import json
import os
from collections import OrderedDict

import numpy as np

from safetensors_io import read_safetensors, write_safetensors

OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]


def convert_state_dict(sd, vision_layers, text_layers):
    hf = OrderedDict()

    def linear(hf_name, oc_name):
        hf[f"{hf_name}.weight"] = sd[f"{oc_name}.weight"]
        hf[f"{hf_name}.bias"] = sd[f"{oc_name}.bias"]

    def layers(hf_prefix, oc_prefix, count):
        for i in range(count):
            h, o = f"{hf_prefix}.layers.{i}", f"{oc_prefix}.resblocks.{i}"
            # copy_attn_layer: in_proj_weight.chunk(3, dim=0) -> q, k, v.
            for part in ("weight", "bias"):
                q, k, v = np.split(sd[f"{o}.attn.in_proj_{part}"], 3, axis=0)
                hf[f"{h}.self_attn.k_proj.{part}"] = k
                hf[f"{h}.self_attn.v_proj.{part}"] = v
                hf[f"{h}.self_attn.q_proj.{part}"] = q
            linear(f"{h}.self_attn.out_proj", f"{o}.attn.out_proj")
            linear(f"{h}.layer_norm1", f"{o}.ln_1")
            linear(f"{h}.mlp.fc1", f"{o}.mlp.c_fc")
            linear(f"{h}.mlp.fc2", f"{o}.mlp.c_proj")
            linear(f"{h}.layer_norm2", f"{o}.ln_2")

    hf["logit_scale"] = sd["logit_scale"]
    hf["text_model.embeddings.position_embedding.weight"] = sd["positional_embedding"]
    hf["text_model.embeddings.position_ids"] = np.arange(sd["positional_embedding"].shape[0], dtype=np.int64)[None]
    hf["text_model.embeddings.token_embedding.weight"] = sd["token_embedding.weight"]
    layers("text_model.encoder", "transformer", text_layers)
    linear("text_model.final_layer_norm", "ln_final")
    hf["text_projection.weight"] = np.ascontiguousarray(sd["text_projection"].T)
    hf["vision_model.embeddings.class_embedding"] = sd["visual.class_embedding"]
    hf["vision_model.embeddings.patch_embedding.weight"] = sd["visual.conv1.weight"]
    hf["vision_model.embeddings.position_embedding.weight"] = sd["visual.positional_embedding"]
    hf["vision_model.embeddings.position_ids"] = np.arange(
        sd["visual.positional_embedding"].shape[0], dtype=np.int64)[None]
    layers("vision_model.encoder", "visual.transformer", vision_layers)
    linear("vision_model.pre_layrnorm", "visual.ln_pre")
    linear("vision_model.post_layernorm", "visual.ln_post")
    hf["visual_projection.weight"] = np.ascontiguousarray(sd["visual.proj"].T)
    return hf


def hf_config(oc):
    model = oc["model_cfg"]
    v, t = model["vision_cfg"], model["text_cfg"]
    act = "quick_gelu" if model.get("quick_gelu", False) else "gelu"
    v_width, t_width = v.get("width", 768), t.get("width", 512)
    embed = model["embed_dim"]
    return {
        "architectures": ["CLIPModel"],
        "initializer_factor": 1.0,
        "logit_scale_init_value": 2.6592,
        "model_type": "clip",
        "projection_dim": embed,
        "text_config": {
            "bos_token_id": 49406,
            "eos_token_id": 49407,
            "pad_token_id": 1,
            "hidden_act": act,
            "hidden_size": t_width,
            "intermediate_size": int(t_width * t.get("mlp_ratio", 4.0)),
            "layer_norm_eps": 1e-05,
            "max_position_embeddings": t.get("context_length", 77),
            "model_type": "clip_text_model",
            "num_attention_heads": t.get("heads", 8),
            "num_hidden_layers": t.get("layers", 12),
            "projection_dim": embed,
            "vocab_size": t.get("vocab_size", 49408),
        },
        "torch_dtype": "float32",
        "vision_config": {
            "hidden_act": act,
            "hidden_size": v_width,
            "image_size": v.get("image_size", 224),
            "intermediate_size": int(v_width * v.get("mlp_ratio", 4.0)),
            "layer_norm_eps": 1e-05,
            "model_type": "clip_vision_model",
            "num_attention_heads": v_width // v.get("head_width", 64),
            "num_channels": 3,
            "num_hidden_layers": v.get("layers", 12),
            "patch_size": v.get("patch_size", 16),
            "projection_dim": embed,
        },
    }


def preprocessor_config(oc):
    size = oc["model_cfg"]["vision_cfg"].get("image_size", 224)
    pre = oc.get("preprocess_cfg", {})
    return {
        "crop_size": {"height": size, "width": size},
        "do_center_crop": True,
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": pre.get("mean", OPENAI_MEAN),
        "image_processor_type": "CLIPImageProcessor",
        "image_std": pre.get("std", OPENAI_STD),
        "resample": 3,
        "rescale_factor": 0.00392156862745098,
        "size": {"shortest_edge": size},
    }


def bytes_to_unicode():
    """GPT-2's table, as open_clip's and transformers' CLIP tokenizers build it."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def tokenizer_files(bpe_gz):
    """vocab.json and merges.txt as openai/clip-vit-* ship them, from open_clip's SimpleTokenizer construction."""
    merges = gzip.open(bpe_gz).read().decode("utf-8").split("\n")
    merges = merges[1 : 49152 - 256 - 2 + 1]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {token: i for i, token in enumerate(vocab)}, "#version: 0.2\n" + "\n".join(merges) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="open_clip folder (open_clip_config.json + safetensors)")
    parser.add_argument("--vocab", required=True, help="bpe_simple_vocab_16e6.txt.gz")
    parser.add_argument("--out", required=True)
    parser.add_argument("--bin", action="store_true", help="also write pytorch_model.bin (needs torch)")
    parser.add_argument("--bin-only", action="store_true", help="write only pytorch_model.bin")
    args = parser.parse_args()

    with open(os.path.join(args.model, "open_clip_config.json")) as f:
        oc = json.load(f)
    sd = read_safetensors(os.path.join(args.model, "open_clip_model.safetensors"))
    v_layers = oc["model_cfg"]["vision_cfg"].get("layers", 12)
    t_layers = oc["model_cfg"]["text_cfg"].get("layers", 12)
    hf = convert_state_dict(sd, v_layers, t_layers)
    os.makedirs(args.out, exist_ok=True)
    if not args.bin_only:
        write_safetensors(os.path.join(args.out, "model.safetensors"), hf)
        for name, content in (("config.json", hf_config(oc)), ("preprocessor_config.json", preprocessor_config(oc))):
            with open(os.path.join(args.out, name), "w") as f:
                json.dump(content, f, indent=2, sort_keys=True)
                f.write("\n")
        vocab, merges = tokenizer_files(args.vocab)
        with open(os.path.join(args.out, "vocab.json"), "w", encoding="utf-8") as f:
            json.dump(vocab, f, ensure_ascii=False)
        with open(os.path.join(args.out, "merges.txt"), "w", encoding="utf-8") as f:
            f.write(merges)
    if args.bin or args.bin_only:
        import torch

        # torch.tensor keeps 0-d arrays (logit_scale) 0-d; np.ascontiguousarray would make them 1-d.
        state = OrderedDict((name, torch.tensor(a)) for name, a in hf.items())
        torch.save(state, os.path.join(args.out, "pytorch_model.bin"))


if __name__ == "__main__":
    main()
