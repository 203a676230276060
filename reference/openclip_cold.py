"""The model card's zero-shot example with the real open_clip, as one fresh process: the Python side of
`npm run bench:cold` (bench/cold.ts).

    python3 reference/openclip_cold.py --model DIR --image one.jpg --labels "dark brown,bleeding,irregular shape"

DIR is a Hugging Face open_clip folder: open_clip_config.json plus open_clip_pytorch_model.bin (what open_clip
2.24 loads from the Hub; bench/cold.ts writes it from the safetensors file once, untimed). open_clip's own
hf-hub path runs (`create_model_from_pretrained("hf-hub:...")`, `get_tokenizer("hf-hub:...")`), with its two
download functions pointed at DIR so that nothing is fetched. Prints the label probabilities on stdout and,
on stderr, one JSON line of phase times measured from the interpreter's start.
"""
import argparse
import json
import os
import sys
import time

START = time.perf_counter()
# Seconds since the interpreter started (before this module ran): the process's own start-up.
try:
    with open("/proc/self/stat") as f:
        _ticks = int(f.read().split(")")[1].split()[19])
    with open("/proc/uptime") as f:
        _uptime = float(f.read().split()[0])
    PROCESS_AGE = _uptime - _ticks / os.sysconf("SC_CLK_TCK")
except (OSError, ValueError, IndexError):
    PROCESS_AGE = 0.0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--labels", required=True)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--prepare-from", metavar="SAFETENSORS_DIR",
                        help="instead: write DIR (config + open_clip_pytorch_model.bin) from this safetensors folder")
    args = parser.parse_args()
    if args.prepare_from:
        return prepare(args.prepare_from, args.model)
    phases = {"interpreter": PROCESS_AGE}
    mark = time.perf_counter()

    def phase(name):
        nonlocal mark
        now = time.perf_counter()
        phases[name] = now - mark
        mark = now

    import torch
    from PIL import Image
    import open_clip
    import open_clip.factory as factory
    from open_clip.version import __version__ as open_clip_version

    phase("import")
    if args.threads:
        torch.set_num_threads(args.threads)
    model_dir = os.path.abspath(args.model)
    with open(os.path.join(model_dir, "open_clip_config.json")) as f:
        config = json.load(f)
    # open_clip 2.24's hf-hub path, served from DIR instead of the network.
    factory.download_pretrained_from_hf = lambda model_id, filename="open_clip_pytorch_model.bin", **_: os.path.join(model_dir, filename)
    factory._get_hf_config = lambda model_id, cache_dir=None: config
    model, preprocess = open_clip.create_model_from_pretrained("hf-hub:local/whylesion")
    model.eval()
    tokenizer = open_clip.get_tokenizer("hf-hub:local/whylesion")
    phase("build_and_load")
    labels = [label.strip() for label in args.labels.split(",") if label.strip()]
    image = preprocess(Image.open(args.image)).unsqueeze(0)
    phase("preprocess")
    text = tokenizer(labels)
    phase("tokenize")
    with torch.no_grad():
        image_features = model.encode_image(image)
        phase("image_tower")
        text_features = model.encode_text(text)
        phase("text_tower")
        image_features /= image_features.norm(dim=-1, keepdim=True)
        text_features /= text_features.norm(dim=-1, keepdim=True)
        probs = (100.0 * image_features @ text_features.T).softmax(dim=-1)[0]
    phase("softmax")
    print(args.image)
    for label, p in sorted(zip(labels, probs.tolist()), key=lambda lp: -lp[1]):
        print(f"  {label}  {100 * p:6.2f}%")
    sys.stdout.flush()
    phases["total_in_script"] = time.perf_counter() - START
    sys.stderr.write(json.dumps({"phases": phases, "torch": torch.__version__, "open_clip": open_clip_version,
                                 "threads": torch.get_num_threads(), "probs": dict(zip(labels, probs.tolist()))}) + "\n")


def prepare(source_dir, model_dir):
    """open_clip 2.24 reads only torch pickles: the same tensors, saved as its Hub file name."""
    import shutil

    import torch

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from safetensors_io import read_safetensors

    os.makedirs(model_dir, exist_ok=True)
    shutil.copyfile(os.path.join(source_dir, "open_clip_config.json"), os.path.join(model_dir, "open_clip_config.json"))
    tensors = {name: torch.from_numpy(array) for name, array in read_safetensors(os.path.join(source_dir, "open_clip_model.safetensors")).items()}
    temporary = os.path.join(model_dir, "open_clip_pytorch_model.bin.tmp")
    torch.save(tensors, temporary)
    os.replace(temporary, os.path.join(model_dir, "open_clip_pytorch_model.bin"))


if __name__ == "__main__":
    main()
