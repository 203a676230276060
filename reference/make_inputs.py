#!/usr/bin/python3
"""Writes deterministic synthetic model inputs: pixels.npy [B, 3, S, S] and tokens.json (rows of ids).

Pixels look like normalized photos (smooth per-channel structure plus noise, within CLIP's normalized
range). Token rows mimic the CLIP tokenizer's layout for a small vocabulary: SOT = vocab-2, random ids in
[1, vocab-3], EOT = vocab-1 (the largest id, so argmax finds it), zero padding. Row lengths cycle through
an empty text, short and medium texts and a row whose EOT sits in the last position.

Usage: make_inputs.py --seed N --images B --image-size S --texts N --context C --vocab V --out DIR
"""
import argparse
import json
import os
import sys

import numpy as np


def synthetic_pixels(rng, images, size):
    coords = np.linspace(-1.0, 1.0, size, dtype=np.float64)
    ys, xs = np.meshgrid(coords, coords, indexing="ij")
    batch = np.empty((images, 3, size, size), dtype=np.float32)
    for b in range(images):
        for c in range(3):
            fy, fx, phase = rng.uniform(0.5, 4.0), rng.uniform(0.5, 4.0), rng.uniform(0, 2 * np.pi)
            smooth = np.sin(np.pi * (fy * ys + fx * xs) + phase) - 1.5 * (xs ** 2 + ys ** 2) + 0.5
            batch[b, c] = np.clip(smooth + 0.4 * rng.standard_normal((size, size)), -1.79, 2.15)
    return batch


def synthetic_tokens(rng, texts, context, vocab):
    sot, eot = vocab - 2, vocab - 1
    lengths = [2, 9, 30, context]  # ids per row including SOT and EOT
    rows = []
    for i in range(texts):
        length = lengths[i % len(lengths)]
        body = rng.integers(1, vocab - 2, size=length - 2).tolist()  # ids in [1, vocab-3]
        rows.append([sot] + body + [eot] + [0] * (context - length))
    return rows


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--images", type=int, required=True)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--texts", type=int, required=True)
    parser.add_argument("--context", type=int, default=77)
    parser.add_argument("--vocab", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out, exist_ok=True)
    np.save(os.path.join(args.out, "pixels.npy"), synthetic_pixels(rng, args.images, args.image_size))
    with open(os.path.join(args.out, "tokens.json"), "w") as f:
        json.dump({"sot": args.vocab - 2, "eot": args.vocab - 1,
                   "tokens": synthetic_tokens(rng, args.texts, args.context, args.vocab)}, f)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
