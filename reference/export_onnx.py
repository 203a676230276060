#!/usr/bin/python3
"""Exports clip_reference.py's two towers to ONNX, for benchmarking other engines on the same forward.

Usage: export_onnx.py --model DIR --out DIR [--opset 17]
Writes OUT/image.onnx (input "pixels" [batch, 3, S, S] float32 -> "embedding" [batch, embed_dim]) and
OUT/text.onnx (input "tokens" [batch, context] int64 -> "embedding" [batch, embed_dim]), raw (unnormalized)
embeddings, batch dynamic. Needs only torch (1.13's exporter writes the protobuf itself; the onnx package is not
used). Each tower must stay under protobuf's 2 GB (ViT-L/14 f32: 1.2 GB image, 0.5 GB text).
"""
import argparse
import json
import os
import sys
import warnings

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_reference  # noqa: E402


def _layer_norm_static(x, weights, prefix, eps):
    """clip_reference.layer_norm with the normalized shape taken from the gain (a constant) instead of x.shape[-1],
    which the tracer records as a dynamic value that the exporter refuses. Same arithmetic."""
    gain = weights[prefix + ".weight"]
    return F.layer_norm(x, tuple(gain.shape), gain, weights[prefix + ".bias"], eps)


clip_reference.layer_norm = _layer_norm_static
# The reference's input checks run once at trace time (the exported graph has no Python ifs, which is right for
# valid inputs); the EOT index from argmax is never negative, which the exporter's advanced-indexing warning is about.
warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
warnings.filterwarnings("ignore", message="Exporting aten::index operator of advanced indexing")


class Tower(torch.nn.Module):
    def __init__(self, encode):
        super().__init__()
        self.encode = encode

    def forward(self, x):
        return self.encode(x)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="open_clip checkpoint folder")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (17: LayerNormalization is one op)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    reference = clip_reference.ClipReference(args.model)
    size, context = reference.vision["image_size"], reference.text["context_length"]
    pixels = torch.zeros(2, 3, size, size)
    tokens = torch.zeros(2, context, dtype=torch.int64)
    tokens[:, 0], tokens[:, 1] = reference.text["vocab_size"] - 2, reference.text["vocab_size"] - 1
    with torch.no_grad():
        for name, encode, example, input_name in (
            ("image", reference.encode_image, pixels, "pixels"),
            ("text", reference.encode_text, tokens, "tokens"),
        ):
            path = os.path.join(args.out, f"{name}.onnx")
            torch.onnx.export(Tower(encode), (example,), path, input_names=[input_name], output_names=["embedding"],
                              dynamic_axes={input_name: {0: "batch"}, "embedding": {0: "batch"}},
                              opset_version=args.opset, do_constant_folding=True)
    with open(os.path.join(args.out, "export.json"), "w") as f:
        json.dump({"torch": torch.__version__, "opset": args.opset, "image_size": size, "context": context}, f)


if __name__ == "__main__":
    main(sys.argv[1:])
