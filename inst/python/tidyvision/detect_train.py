"""Training YOLO detectors offline: datasets in YOLO format, and the training run.

A dataset comes from a user's YOLO ``data.yaml`` (copied with absolute paths
and nothing else: its ``download`` key, which ultralytics would run as a
script, is dropped) or from tidy boxes written here as a YOLO dataset.
Images are linked, or copied upright when ultralytics would read them
differently (EXIF-rotated, or a format it does not read).
"""
import csv
import json
import os
import re
import shutil
import time
from pathlib import Path

from . import images
from .detect import is_bare_name, open_yolo, resolve_weights, torch_state, ultralytics_module, yolo_device
from .errors import TidyvisionError, check

TINY = "yolov8-tiny.yaml"
# Formats ultralytics reads (ultralytics.data.utils.IMG_FORMATS, less the rare ones).
YOLO_FORMATS = {".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp"}
# Arguments train() sets itself.
RESERVED = {"data", "model", "epochs", "imgsz", "batch", "device", "seed", "project", "name",
            "exist_ok", "plots", "amp", "resume", "mode", "task", "save_dir"}
# ultralytics' defaults are tuned for COCO: an optimizer step every 64 images
# after 3 warm-up epochs, so a set of a hundred images gets a handful of
# steps and a detector from scratch learns nothing. These give a step per
# batch (nbs = batch) and learn on small sets; callers may override them.
SMALL_DATA = {"warmup_epochs": 0, "optimizer": "AdamW", "lr0": 0.003, "mosaic": 0}
HISTORY = {
    "epoch": "epoch", "train/box_loss": "train_box_loss", "train/cls_loss": "train_cls_loss",
    "train/dfl_loss": "train_dfl_loss", "metrics/precision(B)": "precision",
    "metrics/recall(B)": "recall", "metrics/mAP50(B)": "map50", "metrics/mAP50-95(B)": "map50_95",
    "val/box_loss": "val_box_loss", "val/cls_loss": "val_cls_loss", "val/dfl_loss": "val_dfl_loss",
    "lr/pg0": "learning_rate", "time": "time",
}


# Datasets -------------------------------------------------------------------

def _write_yaml(path, root, names, splits):
    # JSON is YAML, and needs no YAML writer.
    data = {"path": str(root), **{k: str(v) for k, v in splits.items()},
            "names": {i: n for i, n in enumerate(names)}}
    Path(path).write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    return str(path)


def _resolve(root, value):
    p = (root / value).resolve()
    if not p.exists() and str(value).startswith("../"):
        p = (root / str(value)[3:]).resolve()  # ultralytics' own fallback for Roboflow exports
    return p


def copy_data_yaml(data, out_dir):
    """A copy of a YOLO data.yaml with absolute paths, checked to exist."""
    import yaml
    src = Path(data)
    check(src.is_file(), "path_not_found", f"Can't find the data file {src}.")
    try:
        spec = yaml.safe_load(src.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise TidyvisionError("bad_data", f"{src} is not a YAML file: {e}") from None
    check(isinstance(spec, dict) and "train" in spec and ("val" in spec or "validation" in spec),
          "bad_data", f"{src} needs `train:` and `val:` entries (a YOLO data.yaml).")
    root = Path(spec.get("path") or ".")
    if not root.is_absolute():
        root = (src.parent / root) if (src.parent / root).exists() else Path.cwd() / root
    splits = {}
    for key in ("train", "val", "test"):
        value = spec.get(key) if key != "val" else spec.get("val", spec.get("validation"))
        if not value:
            continue
        check(isinstance(value, str), "bad_data", f"`{key}:` in {src} must be one folder or list file.")
        splits[key] = _resolve(root, value)
        check(splits[key].exists(), "path_not_found",
              f"`{key}: {value}` in {src} points to {splits[key]}, which does not exist.")
    names = spec.get("names")
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    if names is None and isinstance(spec.get("nc"), int):
        names = [f"class_{i}" for i in range(spec["nc"])]
    check(isinstance(names, list) and names, "bad_data", f"{src} needs `names:` (the class names).")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return _write_yaml(Path(out_dir) / "data.yaml", root.resolve(), [str(n) for n in names], splits)


def _place_image(src, dst_stem):
    """Link ``src`` into the dataset, or save an upright PNG copy where ultralytics
    might read it otherwise (any EXIF orientation, a format it does not read)."""
    from PIL import Image
    suffix = Path(src).suffix.lower()
    with Image.open(src) as im:
        oriented = im.getexif().get(0x0112, 1) != 1
    if suffix in YOLO_FORMATS and not oriented:
        dst = dst_stem.with_suffix(suffix)
        try:
            os.symlink(os.path.abspath(src), dst)
        except OSError:  # no symlinks (Windows without developer mode)
            shutil.copyfile(src, dst)
        return
    images.load_rgb(src).save(dst_stem.with_suffix(".png"))


def _label_lines(boxes, width, height, path):
    lines = []
    for cls, x0, y0, x1, y1 in boxes:
        check(-1 <= x0 < x1 <= width + 1 and -1 <= y0 < y1 <= height + 1, "bad_boxes",
              f"A box of {path} ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is not inside the image "
              f"({width} x {height} pixels as displayed).")
        x0, x1 = max(0.0, x0), min(float(width), x1)
        y0, y1 = max(0.0, y0), min(float(height), y1)
        lines.append(f"{int(cls)} {(x0 + x1) / 2 / width:.6f} {(y0 + y1) / 2 / height:.6f} "
                     f"{(x1 - x0) / width:.6f} {(y1 - y0) / height:.6f}")
    return lines


def write_dataset(root, paths, splits, box_image, box_class, xmin, ymin, xmax, ymax, classes):
    """A YOLO dataset under ``root`` from tidy boxes in displayed pixels.

    ``paths``/``splits`` list each image once ("train" or "val"); box k
    belongs to image ``box_image[k]`` (0-based) with class index
    ``box_class[k]``. Images without boxes are backgrounds. Unreadable images
    are skipped and returned.
    """
    root = Path(root)
    per_image = [[] for _ in paths]
    for k, i in enumerate(box_image):
        per_image[int(i)].append((box_class[k], xmin[k], ymin[k], xmax[k], ymax[k]))
    with images.quiet_bomb_warnings():
        infos = images.parallel_map(images.header_info, paths)
    skipped = {"path": [], "problem": []}
    for i, (path, split, info) in enumerate(zip(paths, splits, infos)):
        if not info["readable"]:
            skipped["path"].append(path)
            skipped["problem"].append(info["problem"])
            continue
        for sub in ("images", "labels"):
            (root / split / sub).mkdir(parents=True, exist_ok=True)
        stem = f"{i:06d}_{Path(path).stem}"
        _place_image(path, root / split / "images" / stem)
        lines = _label_lines(per_image[i], info["width"], info["height"], path)
        (root / split / "labels" / f"{stem}.txt").write_text("".join(x + "\n" for x in lines))
    present = {s for s, info in zip(splits, infos) if info["readable"]}
    check("train" in present, "no_images", "No readable training images are left.")
    check("val" in present, "no_images", "No readable validation images are left.")
    yaml = _write_yaml(root / "data.yaml", root.resolve(), list(classes),
                       {"train": (root / "train" / "images").resolve(),
                        "val": (root / "val" / "images").resolve()})
    return {"data": yaml, "skipped_path": skipped["path"], "skipped_problem": skipped["problem"]}


# Training -------------------------------------------------------------------

def tiny_yaml(out_dir, n_classes):
    """YOLOv8 at half yolov8n's width: a detector small enough to train in a test or a demo."""
    ultralytics_module()
    from ultralytics.utils import ROOT
    import yaml
    spec = yaml.safe_load((ROOT / "cfg" / "models" / "v8" / "yolov8.yaml").read_text())
    spec.pop("scales", None)
    spec.update(nc=int(n_classes), depth_multiple=0.33, width_multiple=0.125)
    path = Path(out_dir) / TINY
    path.write_text(json.dumps(spec))
    return str(path)


def _model_source(model, out_dir, n_classes):
    """What YOLO() gets: a model yaml (a file, or one ultralytics ships) or local weights,
    always as a path: ultralytics would look a bare name up in the working directory first."""
    if model == TINY:
        return tiny_yaml(out_dir, n_classes)
    if not str(model).endswith((".yaml", ".yml")):
        return resolve_weights(model)
    if not is_bare_name(model):
        path = Path(os.path.expanduser(str(model)))
        check(path.is_file() and "://" not in str(model), "path_not_found", f"Can't find the model file {model}.")
        return str(path.resolve())
    return _shipped_yaml(str(model), out_dir)


def _shipped_yaml(name, out_dir):
    """A copy in ``out_dir`` of the model yaml ultralytics ships as ``name`` ("yolov8n.yaml" is
    yolov8.yaml at scale n, which ultralytics reads from the file name)."""
    ultralytics_module()
    from ultralytics.utils import ROOT
    unified = re.sub(r"(\d+)([nslmx])(.+)?$", r"\1\3", Path(name).stem) + Path(name).suffix
    found = [p for n in dict.fromkeys((name, unified)) for p in sorted((ROOT / "cfg" / "models").rglob(n))]
    check(found, "unknown_model",
          f"\"{name}\" is not a model ultralytics ships; use e.g. \"yolov8n.yaml\", \"yolo11n.yaml\" or "
          f"\"{TINY}\", or the path of your own .yaml (a bare name never means a file in the working "
          "directory).")
    path = Path(out_dir) / name
    path.write_text(found[0].read_text(encoding="utf-8"), encoding="utf-8")
    return str(path)


def _trainer_class():
    from ultralytics.models.yolo.detect import DetectionTrainer

    class LocalTrainer(DetectionTrainer):
        """ultralytics' trainer with only its own no-op callbacks and tidyvision's."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            for fns in self.callbacks.values():
                fns[:] = [f for f in fns if not _is_integration(f)]

    return LocalTrainer


def _is_integration(fn):
    module = getattr(fn, "__module__", "") or ""
    return module.startswith("ultralytics.") and module != "ultralytics.utils.callbacks.base"


def _epoch_ticker(progress):
    """progress(epoch, epochs) once per epoch; ultralytics fires the event again,
    as epoch ``epochs + 1``, after validating the best weights."""
    def tick(trainer):
        if trainer.epoch < trainer.epochs:
            progress(trainer.epoch + 1, trainer.epochs)

    return tick


def train(data, run_dir, model=TINY, epochs=50, image_size=640, batch_size=8, seed=1,
          device="auto", progress=None, **overrides):
    """Train a YOLO detector on ``data`` (a data.yaml) into ``run_dir``, offline,
    with SMALL_DATA settings unless ``overrides`` replace them."""
    bad = sorted(RESERVED & set(overrides))
    check(not bad, "bad_argument",
          f"{', '.join(bad)} can't be passed through `...`: train_detector() sets them itself.")
    ultralytics_module()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    data = copy_data_yaml(data, run_dir)
    classes = list(json.loads(Path(data).read_text(encoding="utf-8"))["names"].values())
    yolo = open_yolo(_model_source(model, run_dir, len(classes)))
    if progress is not None:
        yolo.add_callback("on_fit_epoch_end", _epoch_ticker(progress))
    args = dict(data=data, epochs=int(epochs), imgsz=int(image_size), batch=int(batch_size),
                device=yolo_device(device), seed=int(seed), deterministic=True, project=str(run_dir),
                name="train", exist_ok=True, plots=False, amp=False, workers=0, verbose=False,
                nbs=int(batch_size), **SMALL_DATA)
    start = time.time()
    with torch_state():
        yolo.train(trainer=_trainer_class(), **{**args, **overrides})
    save_dir = Path(yolo.trainer.save_dir)
    best = save_dir / "weights" / "best.pt"
    if not best.exists():
        best = save_dir / "weights" / "last.pt"
    check(best.exists(), "training_failed", f"Training wrote no weights in {save_dir}.")
    return {"weights": str(best), "classes": classes, "data": str(data), "dir": str(save_dir),
            "history": read_history(save_dir / "results.csv"), "seconds": time.time() - start,
            "image_size": int(image_size), "n_train": _n_images(yolo.trainer, "train_loader"),
            "n_val": _n_images(yolo.trainer, "test_loader")}


def _n_images(trainer, loader):
    return getattr(getattr(getattr(trainer, loader, None), "dataset", None), "ni", None)


def read_history(path):
    """results.csv as tidy columns; ``seconds`` per epoch from the running total."""
    out = {v: [] for v in HISTORY.values()}
    if Path(path).exists():
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                row = {k.strip(): v for k, v in row.items()}
                for src, dst in HISTORY.items():
                    value = row.get(src)
                    out[dst].append(float(value) if value not in (None, "") else None)
    total = [t or 0.0 for t in out.pop("time")]
    out["epoch"] = [int(e) for e in out["epoch"]]
    out["seconds"] = [t - prev for t, prev in zip(total, [0.0] + total[:-1])]
    return out
