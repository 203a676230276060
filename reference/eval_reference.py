"""The KnoBo evaluation protocol in plain PyTorch + scikit-learn, on features the engine exported.

    eval_reference.py protocol FEATURES_DIR OUT.json [--seeds 5]
        FEATURES_DIR holds {train,val,test}.npy (raw image embeddings), labels.json ({"classes", "train",
        "val", "test"}), concepts.npy (raw concept text embeddings), prompts.npy + prompts.json (zero-shot
        prompt embeddings and the class of each) and prior.npy ([classes, concepts], +1/-1/0).
        Writes accuracies per mode (percent; adam modes per seed) and scikit-learn's full-batch solutions.
    eval_reference.py time X.npy Y.npy [--epochs 200]
        Times the Adam protocol (linear, batch 64) on the given features and prints JSON.

Protocol (KnoBo modules/cbm.py): nn.Linear with bias, cross-entropy, Adam lr 1e-3, batch 64 with a shuffled
DataLoader, 200 epochs, the weights of the best validation epoch kept; knobo adds mean |tanh(W) - P|.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def train_adam(x_train, y_train, x_val, y_val, classes, seed, epochs=200, prior=None, prior_weight=1.0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(x_train.shape[1], classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = torch.utils.data.TensorDataset(torch.tensor(x_train), torch.tensor(y_train, dtype=torch.long))
    loader = torch.utils.data.DataLoader(data, batch_size=64, shuffle=True)
    xv, yv = torch.tensor(x_val), torch.tensor(y_val)
    p = None if prior is None else torch.tensor(prior)
    best, best_state, best_epoch = -1.0, None, 0
    for epoch in range(1, epochs + 1):
        for xb, yb in loader:
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            if p is not None:
                loss = loss + prior_weight * torch.mean(torch.abs(torch.tanh(model.weight) - p))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            acc = (model(xv).argmax(1) == yv).float().mean().item()
        if acc > best:
            best, best_epoch = acc, epoch
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return model, best_epoch


def accuracy(scores, y):
    return float(100 * (np.asarray(scores).argmax(1) == y).mean())


def objective(clf, x, y, C):
    """scikit-learn's multinomial objective: sum of cross-entropy + 0.5/C ||W||^2 (bias unpenalised)."""
    logits = x.astype(np.float64) @ clf.coef_.T + clf.intercept_
    logits -= logits.max(1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    return float(-log_probs[np.arange(len(y)), y].sum() + 0.5 / C * (clf.coef_ ** 2).sum())


def protocol(args):
    d = Path(args.features)
    labels = json.loads((d / "labels.json").read_text())
    classes = len(labels["classes"])
    raw = {s: np.load(d / f"{s}.npy").astype(np.float32) for s in ("train", "val", "test")}
    y = {s: np.array(labels[s], dtype=np.int64) for s in ("train", "val", "test")}
    concepts = unit(np.load(d / "concepts.npy").astype(np.float32))
    prior = np.load(d / "prior.npy").astype(np.float32)
    features = {
        "linear": {s: unit(raw[s]) for s in raw},
        "concepts": {s: unit(raw[s]) @ concepts.T for s in raw},
    }
    features["knobo"] = features["concepts"]
    prompts = unit(np.load(d / "prompts.npy").astype(np.float32))
    prompt_class = np.array(json.loads((d / "prompts.json").read_text()))
    out = {"classes": labels["classes"], "adam": {}, "lbfgs": {}}

    def zeroshot(x):
        cos = unit(x) @ prompts.T
        return np.stack([cos[:, prompt_class == k].mean(1) for k in range(classes)], 1)

    out["zeroshot"] = {"val_acc": accuracy(zeroshot(raw["val"]), y["val"]), "test_acc": accuracy(zeroshot(raw["test"]), y["test"])}
    for mode in ("linear", "concepts", "knobo"):
        f = features[mode]
        runs = []
        for seed in range(args.seeds):
            model, best_epoch = train_adam(f["train"], y["train"], f["val"], y["val"], classes, seed, prior=prior if mode == "knobo" else None)
            with torch.no_grad():
                runs.append({"seed": seed, "best_epoch": best_epoch,
                             "val_acc": accuracy(model(torch.tensor(f["val"])).numpy(), y["val"]),
                             "test_acc": accuracy(model(torch.tensor(f["test"])).numpy(), y["test"])})
        out["adam"][mode] = runs
    for mode in ("linear", "concepts"):
        f = features[mode]
        clf = LogisticRegression(C=1.0, max_iter=100000, tol=1e-12, multi_class="multinomial", solver="lbfgs")
        clf.fit(f["train"].astype(np.float64), y["train"])
        out["lbfgs"][mode] = {"C": 1.0, "loss": objective(clf, f["train"], y["train"], 1.0),
                              "val_acc": accuracy(clf.decision_function(f["val"]), y["val"]),
                              "test_acc": accuracy(clf.decision_function(f["test"]), y["test"]),
                              "n_iter": int(clf.n_iter_[0])}
    out["versions"] = {"torch": torch.__version__, "sklearn": __import__("sklearn").__version__, "numpy": np.__version__}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


def timing(args):
    x = np.load(args.x).astype(np.float32)
    y = np.load(args.y).astype(np.int64)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    _, best_epoch = train_adam(x, y, x[:2000], y[:2000], int(y.max()) + 1, 0, epochs=args.epochs)
    adam = time.perf_counter() - start
    start = time.perf_counter()
    clf = LogisticRegression(C=1.0, max_iter=1000, multi_class="multinomial", solver="lbfgs").fit(x.astype(np.float64), y)
    lbfgs = time.perf_counter() - start
    print(json.dumps({"adam_seconds": adam, "epochs": args.epochs, "best_epoch": best_epoch, "lbfgs_seconds": lbfgs,
                      "lbfgs_iterations": int(clf.n_iter_[0]), "lbfgs_loss": objective(clf, x, y, 1.0), "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("protocol")
    p.add_argument("features")
    p.add_argument("out")
    p.add_argument("--seeds", type=int, default=5)
    t = sub.add_parser("time")
    t.add_argument("x")
    t.add_argument("y")
    t.add_argument("--epochs", type=int, default=200)
    t.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    protocol(args) if args.command == "protocol" else timing(args)
