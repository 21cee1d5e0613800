"""Fine-tuning: the book's transfer-learning loop (section 7), made fast.

Same procedure as the book: a pretrained body, a new last layer initialised
N(0, 0.01), SGD with momentum, StepLR(step_size, gamma), the best epoch chosen
on validation accuracy (ties: lower loss) and its weights kept. Faster because
each image is decoded and resized once per fit (random crops and flips are
drawn from the cached tensors), decoding uses every core, the forward and
backward passes run with channels_last (in bf16 where a short measurement on
this CPU finds it faster: see speed.py), and ``train_layers = "head"`` runs the
frozen body once and trains on its features.
"""
import hashlib
import time
from dataclasses import asdict, dataclass

import numpy as np

from . import config, images, speed, transforms
from .cache import CACHE
from .classifier import build_classifier, eval_loader, save_weights
from .errors import check

@dataclass
class FitConfig:
    backbone: str = "efficientnet_lite0"
    epochs: int = 10
    learning_rate: float = 0.001
    momentum: float = 0.9
    batch_size: int = 4
    step_size: int = 7
    gamma: float = 0.1
    train_layers: str = "all"
    weights: str = None
    resize: str = "rescale_crop"
    image_size: int = 224
    augment: bool = True
    seed: int = 1
    device: str = "auto"
    precision: str = "auto"
    class_weights: str = "none"

    def __post_init__(self):
        for name in ("epochs", "batch_size", "step_size", "image_size", "seed"):
            setattr(self, name, int(getattr(self, name)))
        transforms.check_mode(self.resize)
        check(self.train_layers in ("all", "head"), "bad_argument",
              f"`train_layers` must be \"all\" or \"head\", not {self.train_layers!r}.")
        check(self.class_weights in ("none", "balanced"), "bad_argument",
              f"`class_weights` must be \"none\" or \"balanced\", not {self.class_weights!r}.")


def balanced_weights(y, n_classes):
    """sklearn's "balanced" class weights n / (k * n_c), from the training labels.

    A class with no readable training image counts as one, so its weight stays finite.
    """
    import torch
    counts = torch.bincount(y, minlength=n_classes).clamp(min=1).float()
    return len(y) / (n_classes * counts)


def fingerprint(digests, labels):
    """sha256 over the training files' digests and labels, order-free."""
    items = sorted(f"{d}\t{label}" for d, label in zip(digests, labels))
    return hashlib.sha256("\n".join(items).encode()).hexdigest()


def seen_images(train_paths, val_paths):
    """Each readable train and val image by content: its sha256 and the
    phashes find_duplicates(method = "phash") compares (full frame, central
    95% and 90%, 16 hex digits each). A corpus run tells the fit's own images
    by these, so a resized or re-encoded copy of one is caught too
    (corpus.py ``trained_flags``)."""
    from . import prepare
    paths = list(train_paths) + list(val_paths)
    split = ["train"] * len(train_paths) + ["val"] * len(val_paths)
    digests = images.parallel_map(prepare.sha256_file, paths)
    hashes = images.parallel_map(prepare.phash_file, paths)
    ok = [i for i, (d, _) in enumerate(digests) if d is not None and hashes[i][0] is not None]
    return {"path": [paths[i] for i in ok], "split": [split[i] for i in ok],
            "sha256": [digests[i][0] for i in ok], "phash": [phash_hex(hashes[i][0]) for i in ok]}


def phash_hex(hashes):
    return "".join(f"{h:016x}" for h in hashes)


def epoch_metrics(y, pred, n_classes):
    """Accuracy, and precision/recall/F1: of the first class for two classes
    (yardstick's event level); otherwise macro averages over the same classes
    for every metric (those in ``y`` or ``pred``), an undefined value counting
    as 0, exactly as R's image_metrics() (a test holds the two together)."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y, pred), 1)
    tp = np.diag(cm).astype(float)
    predicted, actual = cm.sum(axis=0), cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp / predicted
        recall = tp / actual
        f1 = 2 * tp / (predicted + actual)
    f1[np.isnan(precision) | np.isnan(recall)] = np.nan
    present = (predicted + actual) > 0

    def pick(v):
        if n_classes == 2:
            return float(v[0])
        return float(np.nan_to_num(v, nan=0.0)[present].mean()) if present.any() else float("nan")

    return {"accuracy": float(tp.sum() / max(1, cm.sum())),
            "precision": pick(precision), "recall": pick(recall), "f1": pick(f1)}


class Ticker:
    """Progress of one phase for R's ``progress(done, total, label)``.

    Each call to R costs a round trip and a redraw, so ticks go out at most
    every ``every`` seconds; the last one (done == total) always goes out, so
    a bar ends at 100%. ``label=None`` lets R name the bar.
    """

    def __init__(self, progress, total, label=None, every=0.25):
        self.progress, self.total, self.label, self.every = progress, int(total), label, every
        self.done, self.sent, self.last = 0, 0, 0.0

    def __call__(self, n=1):
        self.set(self.done + n)

    def set(self, done, force=False, note=None):
        self.done = done
        if self.progress is None or (done <= self.sent and note is None):
            return
        now = time.perf_counter()
        if force or done >= self.total or now - self.last > self.every:
            self.sent, self.last = done, now
            if note is None:
                self.progress(done, self.total, self.label)
            else:
                self.progress(done, self.total, self.label, note=note)


class Loaded:
    """Decoded images of one split: uint8 tensors and the rows that failed."""

    def __init__(self, paths, fn, min_side, hash_files=False, tick=None):
        tensors, problems = transforms.decode_many(paths, fn, min_side, tick=tick)
        self.ok = [i for i, t in enumerate(tensors) if t is not None]
        self.tensors = [tensors[i] for i in self.ok]
        self.skipped = [(paths[i], p) for i, p in enumerate(problems) if p is not None]
        # sha256 of each readable file, for the training-set fingerprint;
        # remembered with the tensors, so a grid hashes the files once.
        self.digests = (images.parallel_map(images.file_sha256, [paths[i] for i in self.ok])
                        if hash_files else None)

    @property
    def cache_nbytes(self):
        return sum(t.element_size() * t.nelement() for t in self.tensors)


def _files_key(paths):
    import os
    return tuple((p, os.path.getsize(p), os.path.getmtime(p)) if os.path.exists(p) else (p,) for p in paths)


def _decode(train_paths, val_paths, cfg, progress=None):
    """The decoded images and their cache key. Kept in the engine's cache, so a
    grid (or a refit) on the same images decodes them and runs the frozen body
    once; the key holds each file's size and modification time, so edited
    files are read again."""
    random_crops = cfg.train_layers == "all" and cfg.augment
    key = (_files_key(train_paths), _files_key(val_paths), cfg.resize, cfg.image_size, random_crops)
    return key, CACHE.get("decoded", key, lambda: _decode_now(train_paths, val_paths, cfg, progress))


def _decode_now(train_paths, val_paths, cfg, progress=None):
    tick = Ticker(progress, len(train_paths) + len(val_paths), "Decoding images")
    size = cfg.image_size
    fixed, min_side = eval_loader(cfg.resize, size), transforms.decode_min_side(cfg.resize, size)
    if cfg.train_layers == "all" and cfg.augment:
        side = transforms.train_side(size, len(train_paths))
        train = Loaded(train_paths, lambda im: transforms.to_tensor_u8(transforms.train_base(im, side)), side,
                       hash_files=True, tick=tick)
    else:
        train = Loaded(train_paths, fixed, min_side, hash_files=True, tick=tick)
    return train, Loaded(val_paths, fixed, min_side, tick=tick)


def _labels(labels, loaded):
    import torch
    return torch.tensor([int(labels[i]) for i in loaded.ok], dtype=torch.long)


class Trainer:
    """One run of the loop. ``batches(epoch)`` yields (x, y) for training and
    ``val_batches()`` for validation, whether from images or cached features."""

    def __init__(self, cfg, n_classes, progress=None):
        import torch
        self.cfg, self.n_classes, self.progress = cfg, n_classes, progress
        self.device = config.resolve_device(cfg.device)
        self.precision = self.train_precision = None  # set by choose_precisions()
        self.class_weight = None  # per-class loss weights, set by fit() for class_weights = "balanced"
        config.seed_everything(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed)

    def choose_precisions(self, model):
        """Inference and training precisions for this model, measured on a CPU (speed.py).

        A head trained on cached features is a linear layer: fp32 costs nothing there.
        """
        cfg = self.cfg
        self.precision = speed.inference(cfg.precision, self.device, model, cfg.backbone, cfg.image_size)
        if cfg.train_layers == "head" and cfg.precision == "auto" and self.device == "cpu":
            self.train_precision = "fp32"
        else:
            self.train_precision = speed.choose("train", model, cfg.backbone, cfg.batch_size, cfg.image_size,
                                                self.device, cfg.precision)[0]

    def run(self, model, params, train_x, train_y, val_x, val_y, prepare):
        import torch
        import torch.nn.functional as F
        cfg = self.cfg
        # foreach: one update over all ~200 parameter tensors instead of a loop
        # of small ones (7% off a batch-4 step on a CPU; see bench/fine_tune.py)
        opt = torch.optim.SGD(params, lr=cfg.learning_rate, momentum=cfg.momentum, foreach=True)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
        history, best, best_state = [], None, None
        n_batches = (len(train_y) + cfg.batch_size - 1) // cfg.batch_size
        tick = Ticker(self.progress, cfg.epochs * n_batches)
        for epoch in range(1, cfg.epochs + 1):
            t0, lr = time.perf_counter(), opt.param_groups[0]["lr"]
            model.train()
            order = torch.randperm(len(train_y), generator=self.gen)
            losses, preds, ys = [], [], []
            for b in range(n_batches):
                idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
                x, y = prepare(train_x, idx, True), train_y[idx]
                with config.autocast(self.device, self.train_precision):
                    logits = model(x)
                loss = F.cross_entropy(logits.float(), y.to(self.device), weight=self.class_weight)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(loss.item() * len(idx))
                preds.append(logits.argmax(1).cpu())
                ys.append(y)
                if b + 1 < n_batches:  # the epoch's last tick comes after validation, with its note
                    tick.set((epoch - 1) * n_batches + b + 1)
            sched.step()
            y_all = torch.cat(ys).numpy()
            history.append(dict(epoch=epoch, split="train", loss=sum(losses) / len(y_all), learning_rate=lr,
                                **epoch_metrics(y_all, torch.cat(preds).numpy(), self.n_classes)))
            val = self.evaluate(model, val_x, val_y, prepare)
            val.update(epoch=epoch, split="val", learning_rate=lr)
            history.append(val)
            seconds = time.perf_counter() - t0
            history[-1]["seconds"] = history[-2]["seconds"] = seconds
            key = (val["accuracy"], -val["loss"])
            if best is None or key > best[0]:
                best = (key, epoch)
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            tick.set(epoch * n_batches, force=True,  # one tick per epoch at least
                     note=f"epoch {epoch} of {cfg.epochs}, validation accuracy {val['accuracy']:.3f}")
        model.load_state_dict(best_state)
        return history, best[1]

    def evaluate(self, model, xs, ys, prepare, batch_size=64):
        import torch
        import torch.nn.functional as F
        model.eval()
        loss, preds, batch_size = 0.0, [], config.forward_batch(self.device, batch_size)
        with torch.inference_mode(), config.autocast(self.device, self.precision):
            for i in range(0, len(ys), batch_size):
                idx = torch.arange(i, min(i + batch_size, len(ys)))
                logits = model(prepare(xs, idx, False)).float()
                loss += F.cross_entropy(logits, ys[idx].to(self.device), reduction="sum").item()
                preds.append(logits.argmax(1).cpu())
        pred = torch.cat(preds).numpy() if preds else np.zeros(0, dtype=np.int64)
        return dict(loss=loss / max(1, len(ys)), **epoch_metrics(ys.numpy(), pred, self.n_classes))


def _features(body, tensors, trainer, tick, batch_size=64):
    """Run the frozen body once over every image: the head-only shortcut."""
    import torch
    body.eval()
    out, batch_size = [], config.forward_batch(trainer.device, batch_size)
    with torch.inference_mode(), config.autocast(trainer.device, trainer.precision):
        for i in range(0, len(tensors), batch_size):
            x = transforms.normalize(torch.stack(tensors[i:i + batch_size]), trainer.device)
            out.append(body(x).float().cpu())
            tick(len(x))
    return torch.cat(out) if out else torch.zeros(0)


def fit(train_paths, train_labels, val_paths, val_labels, n_classes, weights_path,
        progress=None, **settings):
    """Train, select the best epoch on validation, write its weights.

    Labels are 0-based class indices. Returns the history as columns, the best
    epoch, the images skipped as unreadable and a fingerprint of the training set.
    """
    import torch
    cfg = FitConfig(**settings)
    n_classes = int(n_classes)
    check(len(val_paths) > 0, "no_validation", "There are no validation images to choose the best epoch on.")
    t0 = time.perf_counter()
    decoded_key, (train, val) = _decode(list(train_paths), list(val_paths), cfg, progress)
    decode_seconds = time.perf_counter() - t0
    check(len(train.ok) > 0 and len(val.ok) > 0, "no_images", "None of the training or validation images can be read.")
    trainer = Trainer(cfg, n_classes, progress)
    model = build_classifier(cfg.backbone, n_classes, pretrained=True, weights=cfg.weights)
    model.to(device=trainer.device, memory_format=torch.channels_last)
    trainer.choose_precisions(model)
    train_y, val_y = _labels(train_labels, train), _labels(val_labels, val)
    if cfg.class_weights == "balanced":
        trainer.class_weight = balanced_weights(train_y, n_classes).to(trainer.device)
    if cfg.train_layers == "head":
        for p in model.body.parameters():
            p.requires_grad_(False)
        key = (decoded_key, cfg.backbone, cfg.weights, trainer.device, trainer.precision)
        tick = Ticker(progress, len(train.tensors) + len(val.tensors), "Extracting features")
        feats_train, feats_val = CACHE.get("features", key, lambda: (
            _features(model.body, train.tensors, trainer, tick), _features(model.body, val.tensors, trainer, tick)))
        head = model.head
        history, best_epoch = trainer.run(head, head.parameters(), feats_train, train_y, feats_val, val_y,
                                          lambda xs, idx, _: xs[idx].to(trainer.device))
    else:
        size, augment = cfg.image_size, cfg.augment

        def prepare(xs, idx, training):
            if training:
                batch = transforms.augment_batch([xs[i] for i in idx], size, trainer.gen, augment)
            else:
                batch = torch.stack([xs[i] for i in idx])
            return transforms.normalize(batch, trainer.device)
        history, best_epoch = trainer.run(model, model.parameters(), train.tensors, train_y,
                                          val.tensors, val_y, prepare)
    save_weights(model, weights_path)
    cols = {k: [h[k] for h in history] for k in
            ("epoch", "split", "loss", "accuracy", "precision", "recall", "f1", "learning_rate", "seconds")}
    return {
        "history": cols,
        "best_epoch": best_epoch,
        "skipped_path": [p for p, _ in train.skipped + val.skipped],
        "skipped_problem": [q for _, q in train.skipped + val.skipped],
        "fingerprint": fingerprint(train.digests, [train_labels[i] for i in train.ok]),
        # keyed like the decoded images, so a grid hashes its files once
        "seen": CACHE.get("seen", decoded_key[:2], lambda: seen_images(
            [train_paths[i] for i in train.ok], [val_paths[i] for i in val.ok])),
        "n_train": len(train.ok), "n_val": len(val.ok),
        "val_counts": np.bincount(val_y.numpy(), minlength=n_classes).tolist(),
        "device": trainer.device, "precision": trainer.precision, "train_precision": trainer.train_precision,
        "decode_seconds": decode_seconds, "seconds": time.perf_counter() - t0,
        "config": asdict(cfg),
    }
