#!/usr/bin/python3
"""Plain-torch float32 reference of the open_clip ViT CLIP forward (no open_clip needed).

Reads an open_clip checkpoint folder (open_clip_config.json + open_clip_model.safetensors) and
computes encode_image / encode_text exactly as open_clip 2.24 does for the standard ViT + text
transformer (class-token pooling, argmax/EOT text pooling, no layer scale, no attentional pool).
Optionally dumps every intermediate block output so an engine can localize divergence.

Usage: clip_reference.py --model DIR [--weights FILE] [--pixels FILE.npy ...] [--tokens FILE.json | --tokens-npy FILE]
                         --out DIR [--first-texts N] [--dump-blocks] [--threads N] [--timing] [--device auto|cpu|cuda]
                         [--open-clip-images FILE ...] [--timing-runs N] [--autocast-fp16]
Every run also writes OUT/run.json: torch version, device, threads, open_clip version (or null), timings.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from safetensors_io import read_safetensors

LAYER_NORM_EPS = 1e-5

# open_clip's defaults (CLIPVisionCfg / CLIPTextCfg) for keys a config may omit.
VISION_DEFAULTS = {"layers": 12, "width": 768, "head_width": 64, "mlp_ratio": 4.0, "patch_size": 16, "image_size": 224,
                   "ls_init_value": None, "no_ln_pre": False, "pool_type": "tok", "final_ln_after_pool": False}
TEXT_DEFAULTS = {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12, "mlp_ratio": 4.0,
                 "ls_init_value": None, "pool_type": "argmax", "no_causal_mask": False, "proj_bias": False,
                 "embed_cls": False, "pad_id": 0}
# Options that change the architecture away from what this reference implements (towers open_clip builds
# through timm or transformers, attentional pooling, token outputs); refuse them rather than silently
# computing something else.
UNSUPPORTED_VISION = {"timm_model_name", "attentional_pool", "input_patchnorm", "output_tokens", "act_kwargs"}
UNSUPPORTED_TEXT = {"hf_model_name", "output_tokens", "act_kwargs"}
VISION_POOLS = ("tok", "avg")
TEXT_POOLS = ("argmax", "last", "first")


def _as_square(value, what):
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or value[0] != value[1]:
            raise ValueError(f"{what} {value} is not square; only square images/patches are supported")
        return int(value[0])
    return int(value)


def _norm_eps(cfg, tower):
    kwargs = cfg.get("norm_kwargs") or {}
    if set(kwargs) - {"eps"}:
        raise ValueError(f"{tower}_cfg.norm_kwargs {kwargs!r}: only eps is supported by this reference")
    return float(kwargs.get("eps", LAYER_NORM_EPS))


def load_config(model_dir):
    """Returns (embed_dim, vision, text, quick_gelu, custom_text) with open_clip defaults filled in."""
    with open(os.path.join(model_dir, "open_clip_config.json")) as f:
        raw = json.load(f)
    model_cfg = raw.get("model_cfg", raw)  # Hub files wrap the model config; bare model configs do not.
    vision = {**VISION_DEFAULTS, **model_cfg.get("vision_cfg", {})}
    text = {**TEXT_DEFAULTS, **model_cfg.get("text_cfg", {})}
    for key in UNSUPPORTED_VISION & set(model_cfg.get("vision_cfg", {})):
        if vision[key] not in (None, False, 0, 0.0, {}):
            raise ValueError(f"vision_cfg.{key}={vision[key]!r} is not supported by this reference")
    for key in UNSUPPORTED_TEXT & set(model_cfg.get("text_cfg", {})):
        if text[key] not in (None, False, 0, 0.0, {}):
            raise ValueError(f"text_cfg.{key}={text[key]!r} is not supported by this reference")
    if vision["pool_type"] not in VISION_POOLS:
        raise ValueError(f"vision_cfg.pool_type={vision['pool_type']!r} is not supported (only {VISION_POOLS})")
    if text["pool_type"] not in TEXT_POOLS:
        raise ValueError(f"text_cfg.pool_type={text['pool_type']!r} is not supported (only {TEXT_POOLS})")
    custom_text = bool(model_cfg.get("custom_text", False))
    if text["embed_cls"] and not custom_text:
        raise ValueError("text_cfg.embed_cls needs custom_text: open_clip's CLIP.encode_text cannot run it")
    vision["image_size"] = _as_square(vision["image_size"], "image_size")
    vision["patch_size"] = _as_square(vision["patch_size"], "patch_size")
    vision["heads"] = vision["width"] // vision["head_width"]
    vision["eps"] = _norm_eps(vision, "vision")
    text["eps"] = _norm_eps(text, "text")
    if "embed_dim" not in model_cfg:
        raise ValueError("the model config has no embed_dim (open_clip requires it)")
    return int(model_cfg["embed_dim"]), vision, text, bool(model_cfg.get("quick_gelu", False)), custom_text


def layer_norm(x, weights, prefix, eps):
    return F.layer_norm(x, (x.shape[-1],), weights[prefix + ".weight"], weights[prefix + ".bias"], eps)


def multi_head_attention(x, weights, prefix, heads, additive_mask):
    """nn.MultiheadAttention(x, x, x) from the packed in_proj: q is scaled by head_dim^-0.5 before q·kᵀ, as torch does.
    additive_mask is [T, T] or, per prompt, [B, T, T]."""
    batch, tokens, width = x.shape
    head_dim = width // heads
    qkv = F.linear(x, weights[prefix + ".in_proj_weight"], weights[prefix + ".in_proj_bias"])
    q, k, v = (t.reshape(batch, tokens, heads, head_dim).transpose(1, 2) for t in qkv.split(width, dim=-1))
    scores = (q * head_dim ** -0.5) @ k.transpose(-2, -1)
    if additive_mask is not None:
        scores = scores + (additive_mask[:, None] if additive_mask.dim() == 3 else additive_mask)
    context = torch.softmax(scores, dim=-1) @ v
    context = context.transpose(1, 2).reshape(batch, tokens, width)
    return F.linear(context, weights[prefix + ".out_proj.weight"], weights[prefix + ".out_proj.bias"])


def residual_block(x, weights, prefix, heads, quick_gelu, additive_mask, eps):
    """open_clip's ResidualAttentionBlock: x + ls_1(attn(ln_1(x))), x + ls_2(mlp(ln_2(x))); LayerScale multiplies by
    the learned gammas where the block has them (ls_init_value set), else it is the identity."""
    attended = multi_head_attention(layer_norm(x, weights, prefix + ".ln_1", eps), weights, prefix + ".attn", heads,
                                    additive_mask)
    if prefix + ".ls_1.gamma" in weights:
        attended = attended * weights[prefix + ".ls_1.gamma"]
    x = x + attended
    hidden = F.linear(layer_norm(x, weights, prefix + ".ln_2", eps), weights[prefix + ".mlp.c_fc.weight"],
                      weights[prefix + ".mlp.c_fc.bias"])
    hidden = hidden * torch.sigmoid(1.702 * hidden) if quick_gelu else F.gelu(hidden)  # F.gelu is the exact erf form
    mlp = F.linear(hidden, weights[prefix + ".mlp.c_proj.weight"], weights[prefix + ".mlp.c_proj.bias"])
    if prefix + ".ls_2.gamma" in weights:
        mlp = mlp * weights[prefix + ".ls_2.gamma"]
    return x + mlp


class ClipReference:
    def __init__(self, model_dir, weights_path=None, device="cpu"):
        self.embed_dim, self.vision, self.text, self.quick_gelu, self.custom_text = load_config(model_dir)
        weights_path = weights_path or os.path.join(model_dir, "open_clip_model.safetensors")
        self.device = torch.device(device)
        self.weights = {name: torch.from_numpy(array).to(self.device) for name, array in read_safetensors(weights_path).items()}
        # A CustomTextCLIP keeps its TextTransformer under `text.`; CLIP spreads the same modules at the top level.
        self.text_prefix = "text." if self.custom_text else ""
        for tower, cfg, blocks in (("vision", self.vision, "visual.transformer.resblocks"),
                                   ("text", self.text, self.text_prefix + "transformer.resblocks")):
            has_gammas = f"{blocks}.0.ls_1.gamma" in self.weights
            if bool(cfg["ls_init_value"]) != has_gammas:
                raise ValueError(f"{tower}_cfg.ls_init_value={cfg['ls_init_value']!r} but the checkpoint "
                                 f"{'has' if has_gammas else 'lacks'} {blocks}.0.ls_1.gamma")

    def encode_image(self, pixels, dumps=None):
        """pixels [B, 3, H, W] float32 -> raw image embeddings [B, embed_dim]; fills `dumps` if given."""
        w, cfg = self.weights, self.vision
        eps = cfg["eps"]
        pixels = pixels.to(self.device)
        if tuple(pixels.shape[1:]) != (3, cfg["image_size"], cfg["image_size"]):
            raise ValueError(f"pixels have shape {tuple(pixels.shape)}; the model expects [B, 3, {cfg['image_size']}, {cfg['image_size']}]")
        patches = F.conv2d(pixels, w["visual.conv1.weight"], stride=cfg["patch_size"])  # [B, W, g, g]
        x = patches.flatten(2).transpose(1, 2)  # [B, g², W]
        cls = w["visual.class_embedding"].expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + w["visual.positional_embedding"]
        self._record(dumps, "vision_patch_embed", x)
        if not cfg["no_ln_pre"]:
            x = layer_norm(x, w, "visual.ln_pre", eps)
        self._record(dumps, "vision_ln_pre", x)  # the blocks' input: the patch embedding itself under no_ln_pre
        for i in range(cfg["layers"]):
            x = residual_block(x, w, f"visual.transformer.resblocks.{i}", cfg["heads"], self.quick_gelu, None, eps)
            self._record(dumps, f"vision_block{i:02d}", x)

        def pool(tokens):  # open_clip's VisionTransformer._global_pool
            return tokens[:, 1:].mean(dim=1) if cfg["pool_type"] == "avg" else tokens[:, 0]

        if cfg["final_ln_after_pool"]:
            pooled = layer_norm(pool(x), w, "visual.ln_post", eps)
        else:
            pooled = pool(layer_norm(x, w, "visual.ln_post", eps))
        self._record(dumps, "vision_pooled", pooled)
        return pooled @ w["visual.proj"]

    def encode_text(self, tokens, dumps=None):
        """tokens [B, context] int64 -> raw text embeddings [B, embed_dim]; fills `dumps` if given.
        CLIP.encode_text, or TextTransformer.forward for a CustomTextCLIP (custom_text), whose embed_cls appends a
        class token after the context, pooled with ln_final after pooling."""
        w, cfg, p = self.weights, self.text, self.text_prefix
        eps = cfg["eps"]
        batch, context = tokens.shape
        if context != cfg["context_length"]:
            raise ValueError(f"token rows have length {context}; the model expects {cfg['context_length']}")
        if int(tokens.min()) < 0 or int(tokens.max()) >= cfg["vocab_size"]:
            raise ValueError(f"token ids must lie in [0, {cfg['vocab_size']})")
        tokens = tokens.to(self.device)
        x = w[p + "token_embedding.weight"][tokens]
        seq = context
        if cfg["embed_cls"]:
            seq += 1
            x = torch.cat([x, w[p + "cls_emb"].expand(batch, 1, -1)], dim=1)
        x = x + w[p + "positional_embedding"][:seq]
        self._record(dumps, "text_embed", x)
        mask = None
        if not cfg["no_causal_mask"]:
            mask = torch.full((seq, seq), float("-inf"), device=self.device).triu_(1)
            if cfg["embed_cls"]:
                # build_cls_mask: every row sees key 0, and key j (j ≥ 1) where token j−1 is not pad_id; only the
                # last (class) row's entries differ from the causal mask, since rows above already skip keys beyond.
                keys = torch.cat([torch.ones(batch, 1, dtype=torch.bool, device=self.device), tokens != cfg["pad_id"]], 1)
                cls_mask = torch.zeros(batch, seq, seq, device=self.device)
                cls_mask.masked_fill_(~keys[:, None, :].expand(batch, seq, seq), float("-inf"))
                cls_mask[:, :context] = 0  # build_cls_mask pads the top `context` rows with True
                mask = mask[None] + cls_mask
        for i in range(cfg["layers"]):
            x = residual_block(x, w, f"{p}transformer.resblocks.{i}", cfg["heads"], self.quick_gelu, mask, eps)
            self._record(dumps, f"text_block{i:02d}", x)
        if cfg["embed_cls"]:
            pooled = layer_norm(x[:, -1], w, p + "ln_final", eps)
        else:
            x = layer_norm(x, w, p + "ln_final", eps)
            self._record(dumps, "text_ln_final", x)
            if cfg["pool_type"] == "argmax":
                row = tokens.argmax(dim=-1)  # the first maximal id: EOT
            else:
                row = torch.full((batch,), 0 if cfg["pool_type"] == "first" else context - 1, device=self.device)
            pooled = x[torch.arange(batch, device=self.device), row]
        self._record(dumps, "text_pooled", pooled)
        if cfg["proj_bias"]:
            return F.linear(pooled, w[p + "text_projection.weight"], w[p + "text_projection.bias"])
        return pooled @ w[p + "text_projection"]

    @staticmethod
    def _record(dumps, name, tensor):
        if dumps is not None:
            dumps[name] = tensor.detach().cpu().numpy().astype(np.float32)


def load_pixels(paths):
    arrays = []
    for path in paths:
        array = np.load(path).astype(np.float32)
        if array.ndim == 3:
            array = array[None]
        if array.ndim != 4:
            raise ValueError(f"{path}: pixels must be [3, H, W] or [B, 3, H, W], got shape {array.shape}")
        arrays.append(array)
    return torch.from_numpy(np.ascontiguousarray(np.concatenate(arrays, axis=0)))


def load_tokens(json_path, npy_path):
    if json_path is not None:
        with open(json_path) as f:
            data = json.load(f)
        rows = data["tokens"] if isinstance(data, dict) else data  # cases.json keeps them under "tokens"
        array = np.asarray(rows, dtype=np.int64)
    else:
        array = np.load(npy_path).astype(np.int64)
    if array.ndim != 2:
        raise ValueError(f"tokens must be a [N, context] table, got shape {array.shape}")
    return torch.from_numpy(array)


def timed(fn, *args, runs=1):
    """Median seconds of `runs` calls of fn(*args), after one untimed warm-up call (CUDA work included)."""

    def once():
        start = time.perf_counter()
        fn(*args)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter() - start

    once()
    return sorted(once() for _ in range(runs))[runs // 2]


def save(out_dir, name, tensor):
    if isinstance(tensor, torch.Tensor):
        tensor = tensor.detach().float().cpu().numpy()
    np.save(os.path.join(out_dir, name + ".npy"), np.ascontiguousarray(np.asarray(tensor, dtype=np.float32)))


def pick_device(requested):
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda":
        # float32 means float32: no TF32 tensor-core rounding in matmuls or convolutions.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return requested


def open_clip_pixels(model_dir, paths):
    """open_clip's own eval preprocessing of image files ([N, 3, S, S]), or (None, None) when open_clip is not importable."""
    try:
        import open_clip
        from PIL import Image
    except ImportError:
        return None, None
    with open(os.path.join(model_dir, "open_clip_config.json")) as f:
        raw = json.load(f)
    preprocess_cfg = raw.get("preprocess_cfg", {})
    _, vision, _, _, _ = load_config(model_dir)
    size = preprocess_cfg.get("size", vision["image_size"])
    options = {key: preprocess_cfg[key] for key in ("mean", "std", "interpolation", "resize_mode") if key in preprocess_cfg}
    try:
        transform = open_clip.image_transform(size, is_train=False, **options)
    except TypeError:  # open_clip before 2.23 takes only mean and std
        transform = open_clip.image_transform(size, is_train=False, mean=options.get("mean"), std=options.get("std"))
    pixels = torch.stack([transform(Image.open(path)) for path in paths])
    return pixels.float(), getattr(open_clip, "__version__", "unknown")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="open_clip checkpoint folder")
    parser.add_argument("--weights", help="safetensors weights (default: MODEL/open_clip_model.safetensors)")
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"), help="torch device (auto: cuda when torch sees one)")
    parser.add_argument("--open-clip-images", nargs="+", action="extend", default=[],
                        help="image files to preprocess with open_clip (when importable) and embed: OUT/openclip_*.npy")
    parser.add_argument("--pixels", nargs="+", action="extend", default=[], help="[3,H,W] or [B,3,H,W] .npy files, stacked in order")
    tokens_group = parser.add_mutually_exclusive_group()
    tokens_group.add_argument("--tokens", help="JSON: a list of token rows, or an object with a 'tokens' list (cases.json)")
    tokens_group.add_argument("--tokens-npy", help=".npy integer table [N, context]")
    parser.add_argument("--first-texts", type=int, help="keep only the first N token rows")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--dump-blocks", action="store_true", help="also write every intermediate block output")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads (default: all cores)")
    parser.add_argument("--timing", action="store_true", help="print the forward wall time per tower as JSON")
    parser.add_argument("--timing-runs", type=int, default=1, help="timed forwards per tower; the median is printed (default 1)")
    parser.add_argument("--autocast-fp16", action="store_true",
                        help="with --timing on CUDA, also time each tower under torch.autocast float16 (the model card's way)")
    args = parser.parse_args(argv)
    runs = max(1, args.timing_runs)

    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    device = pick_device(args.device)
    model = ClipReference(args.model, args.weights, device)
    dumps = {} if args.dump_blocks else None
    timings = {}
    run = {"torch": torch.__version__, "numpy": np.__version__, "device": device, "threads": args.threads, "open_clip": None}
    with torch.no_grad():
        if args.open_clip_images:
            pixels, run["open_clip"] = open_clip_pixels(args.model, args.open_clip_images)
            if pixels is not None:
                save(args.out, "openclip_pixels", pixels)
                save(args.out, "openclip_image_embeddings_raw", model.encode_image(pixels))
        if args.pixels:
            pixels = load_pixels(args.pixels)
            image_raw = model.encode_image(pixels, dumps)
            save(args.out, "image_embeddings_raw", image_raw)
            save(args.out, "image_embeddings", F.normalize(image_raw, dim=-1))
            if args.timing:
                timings["image_seconds"] = timed(model.encode_image, pixels, runs=runs)
                timings["images"] = pixels.shape[0]
                if args.autocast_fp16 and device == "cuda":
                    with torch.autocast("cuda", dtype=torch.float16):
                        timings["image_seconds_autocast_fp16"] = timed(model.encode_image, pixels, runs=runs)
        if args.tokens is not None or args.tokens_npy is not None:
            tokens = load_tokens(args.tokens, args.tokens_npy)
            if args.first_texts is not None:
                tokens = tokens[: args.first_texts]
            text_raw = model.encode_text(tokens, dumps)
            save(args.out, "text_embeddings_raw", text_raw)
            save(args.out, "text_embeddings", F.normalize(text_raw, dim=-1))
            if args.timing:
                timings["text_seconds"] = timed(model.encode_text, tokens, runs=runs)
                timings["texts"] = tokens.shape[0]
                if args.autocast_fp16 and device == "cuda":
                    with torch.autocast("cuda", dtype=torch.float16):
                        timings["text_seconds_autocast_fp16"] = timed(model.encode_text, tokens, runs=runs)
    for name, array in (dumps or {}).items():
        save(args.out, name, array)
    with open(os.path.join(args.out, "run.json"), "w") as f:
        json.dump({**run, **timings}, f)
    if args.timing:
        timings["threads"] = args.threads
        timings["device"] = torch.cuda.get_device_name() if device == "cuda" else "cpu"
        timings["torch"] = torch.__version__
        print(json.dumps(timings))


if __name__ == "__main__":
    main(sys.argv[1:])
