"""Makes the synthetic, separable skin-lesion dataset of test/fixtures/eval-synth/images (ImageFolder layout).

Each class is a lesion of its own colour and texture on skin; train/val share the skin tone and lighting,
test shifts them (darker skin, a colour cast), like the paper's out-of-distribution split. Seeded: the same
command writes the same files.

    /usr/bin/python3 reference/make_eval_dataset.py test/fixtures/eval-synth/images
"""
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 48
COUNTS = {"train": 24, "val": 25, "test": 25}
# Class names as in KnoBo's priors (skin_class2concept2answer.json), so the knobo mode applies.
CLASSES = {
    "basal cell carcinoma": {"colour": (235, 200, 205), "texture": "vessels"},
    "melanocytic nevi": {"colour": (150, 95, 60), "texture": "smooth"},
    "melanoma": {"colour": (45, 30, 40), "texture": "blotches"},
    "vascular lesions": {"colour": (200, 40, 60), "texture": "dots"},
}


def lesion(rng, spec, shifted):
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    skin = np.array((225, 180, 150) if not shifted else (205, 160, 135), np.float32)
    image = np.ones((SIZE, SIZE, 3), np.float32) * skin + rng.normal(0, 6, (SIZE, SIZE, 3))
    cx, cy = SIZE / 2 + rng.uniform(-5, 5), SIZE / 2 + rng.uniform(-5, 5)
    rx, ry, angle = rng.uniform(10, 16), rng.uniform(8, 14), rng.uniform(0, math.pi)
    dx, dy = x - cx, y - cy
    u = (dx * math.cos(angle) + dy * math.sin(angle)) / rx
    v = (-dx * math.sin(angle) + dy * math.cos(angle)) / ry
    inside = (u * u + v * v) <= 1
    colour = np.array(spec["colour"], np.float32) + rng.normal(0, 8, 3)
    texture = spec["texture"]
    if texture == "vessels":
        pattern = 0.5 + 0.5 * np.sin((x * math.cos(angle) + y * math.sin(angle)) * 0.9)
        lesion_rgb = colour * (0.75 + 0.25 * pattern[..., None]) + np.array((-40, -60, -50)) * (pattern[..., None] > 0.9)
    elif texture == "blotches":
        blobs = rng.normal(0, 1, (SIZE // 8, SIZE // 8))
        blobs = np.kron(blobs, np.ones((8, 8)))
        lesion_rgb = colour + 35 * blobs[..., None]
    elif texture == "dots":
        dots = (np.sin(x * 1.6) * np.sin(y * 1.6)) > 0.6
        lesion_rgb = colour + np.array((50, -20, -10)) * dots[..., None]
    else:
        lesion_rgb = colour + rng.normal(0, 4, (SIZE, SIZE, 3))
    image[inside] = lesion_rgb[inside] if lesion_rgb.ndim == 3 else lesion_rgb
    if shifted:
        image = image * np.array((1.02, 0.98, 1.03)) + 3
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))


def main(out):
    rng = np.random.default_rng(0)
    for split, count in COUNTS.items():
        for name, spec in CLASSES.items():
            folder = Path(out) / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                lesion(rng, spec, split == "test").save(folder / f"{i:03d}.png", optimize=True)


if __name__ == "__main__":
    main(sys.argv[1])
