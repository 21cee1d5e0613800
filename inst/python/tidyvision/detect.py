"""Object detection with YOLOv8 through ultralytics, which never reaches the network on its own.

ultralytics is configured before its first import and patched once after it
(``ultralytics_module()``): ``YOLO_OFFLINE=1`` (no DNS probe at import, no
analytics, no update check), its settings in tidyvision's cache folder, no
package auto-install, no Arial font download, no ``labels.cache`` written into
(or unpickled from) the user's dataset folders, and no Platform, hub or logger
integrations in training. Weights given by name ("yolov8n.pt") are downloaded only when they
are not on disk and the machine is online; offline, that is a quick classed
error. Training lives in detect_train.py.

A .pt file is a pickle, and ultralytics reads it with ``weights_only=False``,
which runs whatever code the file names. Here every checkpoint ultralytics
reads goes through ``weights_only_load()``: torch's weights-only unpickler
with ultralytics' own allow-list of model classes (its restricted loading,
forced on), so a planted or handed-over file can hold weights but run nothing.
A bare name is never looked up in the working directory.
"""
import functools
import logging
import os
import socket
import sys
from contextlib import contextmanager
from pathlib import Path

from . import config, images
from .config import cache_dir
from .cache import CACHE
from .errors import TidyvisionError, check

log = logging.getLogger(__name__)
ASSETS_URL = "https://github.com/ultralytics/assets/releases"
INTEGRATIONS = ("clearml", "comet", "dvc", "mlflow", "raytune", "tensorboard", "wandb")
# Tasks whose results carry axis-aligned boxes.
BOX_TASKS = ("detect", "segment", "pose")


def _env_true(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


# Whether the user declared this machine offline, read before we set YOLO_OFFLINE ourselves.
_USER_OFFLINE = _env_true("YOLO_OFFLINE")


def weights_dir():
    return cache_dir("weights")


@functools.lru_cache(maxsize=1)
def ultralytics_module():
    """ultralytics, imported and set up once with the network switched off
    (a one-time setup, not memory to give back: see cache.py for that)."""
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "False"
    os.environ.setdefault("YOLO_VERBOSE", "False")
    os.environ.setdefault("YOLO_CONFIG_DIR", cache_dir("ultralytics"))
    os.environ["ULTRALYTICS_SAFE_LOAD"] = "1"
    import numpy as np
    printoptions = np.get_printoptions()
    import ultralytics
    from ultralytics.data import dataset, utils as data_utils
    from ultralytics.utils import SETTINGS, checks, events, patches, plotting
    np.set_printoptions(**printoptions)  # ultralytics changes them at import
    # ultralytics replaces PIL.Image.open everywhere with a version that, on a
    # file Pillow can't identify, tries to pip-install a HEIF plugin: undo it.
    from PIL import Image
    Image.open = patches._image_open
    # In memory only: the settings file is left as it is.
    dict.update(SETTINGS, {"sync": False, "api_key": "", **{k: False for k in INTEGRATIONS}})
    events.events.enabled = False
    for module in (checks, data_utils, plotting):
        module.check_font = _local_font
    dataset.save_dataset_cache_file = _no_cache_file
    dataset.load_dataset_cache_file = _no_cache_load
    _weights_only_everywhere()
    return ultralytics


def _weights_only_everywhere():
    """Route every ``torch_load`` of ultralytics through ``weights_only_load()``.

    ultralytics imports its ``torch_load`` by name into each module that reads
    checkpoints (and some import it inside functions), so both the name in
    every loaded module and the one in ``patches`` are replaced; the modules
    that read checkpoints are imported first so that none is missed.
    """
    import importlib
    for name in ("ultralytics.nn.tasks", "ultralytics.utils.torch_utils", "ultralytics.engine.trainer",
                 "ultralytics.engine.model"):
        importlib.import_module(name)
    from ultralytics.nn import tasks
    from ultralytics.utils import patches
    tasks.SAFE_LOAD = True  # read at call time: no eval() of model yaml either
    original = patches.torch_load
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] == "ultralytics" and getattr(module, "torch_load", None) is original:
            module.torch_load = weights_only_load
    patches.torch_load = weights_only_load


def weights_only_load(f, *args, **kwargs):
    """ultralytics' ``torch_load``, but weights-only whatever its caller asks.

    The checkpoint's globals are checked against ultralytics' allow-list (model
    layers, its argument namespace, numpy scalars); anything else, such as
    ``os.system``, stops the load before it runs.
    """
    import torch
    kwargs["weights_only"] = True
    try:
        from ultralytics.nn.tasks import _SafeLoad
    except ImportError:  # another ultralytics: a plain weights-only load fails closed
        return torch.load(f, *args, **kwargs)
    with _SafeLoad.loading(f):
        return torch.load(f, *args, **kwargs)


def unsafe_globals(path):
    """The names in a checkpoint that weights-only loading refuses (code it would run)."""
    import torch
    try:
        needed = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception:
        return []
    allowed = {e[1] if isinstance(e, tuple) else f"{e.__module__}.{e.__qualname__}"
               for e in torch.serialization.get_safe_globals()}
    return [n for n in needed if n not in allowed]


def _local_font(font="Arial.ttf", *args, **kwargs):
    """ultralytics' check_font() without its download: a font already on disk, or None."""
    from ultralytics.utils import USER_CONFIG_DIR
    path = Path(USER_CONFIG_DIR) / Path(font).name
    return path if path.exists() else None


def _no_cache_file(prefix, path, x, version):
    """save_dataset_cache_file() without the write: it would put labels.cache in the user's folder."""
    x["version"] = version


def _no_cache_load(path):
    """A labels.cache is a pickle (np.load with allow_pickle): never read one; labels are rescanned."""
    raise FileNotFoundError(path)


@contextmanager
def torch_state():
    """Undo what ultralytics does to torch globally: thread count, determinism."""
    import torch
    from ultralytics.utils import torch_utils
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch_utils.NUM_THREADS = threads  # select_device() would set cores - 1
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def yolo_device(device):
    device = config.resolve_device(device)
    return "0" if device == "cuda" else device


# Weights --------------------------------------------------------------------

def known_model_names():
    ultralytics_module()
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES
    return GITHUB_ASSETS_NAMES


def is_offline():
    """Declared offline (TIDYVISION_OFFLINE or YOLO_OFFLINE), or GitHub unreachable within 3 s."""
    if _USER_OFFLINE or _env_true("TIDYVISION_OFFLINE"):
        return True
    try:
        socket.create_connection(("github.com", 443), timeout=3).close()
        return False
    except OSError:
        return True


def is_bare_name(model):
    """A name with no folder part ("yolov8n.pt"), as opposed to a path ("./yolov8n.pt")."""
    text = str(model)
    return os.path.basename(text) == text and not text.startswith("~")


def resolve_weights(model, download=True):
    """A local weights file for ``model``: a path, or a model name ultralytics publishes.

    A path (anything with a folder part, such as ``./best.pt``) is used as it
    is. A bare name is never looked up in the working directory, where a file
    of that name may have come with someone else's dataset: it means the
    published weights, in tidyvision's weights cache, downloaded there only
    when online.
    """
    if not is_bare_name(model):
        path = Path(os.path.expanduser(str(model)))
        check(path.is_file(), "weights_missing",
              f"The weights file {path} does not exist. Check the path, or give a model name such as "
              "\"yolov8n.pt\" to download published weights.")
        return str(path.resolve())
    name = str(model)
    check(name.endswith(".pt"), "bad_argument",
          f"`model` must be a .pt weights file or a model name such as \"yolov8n.pt\", not \"{model}\".")
    cached = Path(weights_dir()) / name
    if cached.is_file():
        return str(cached)
    here = os.path.join(os.getcwd(), name)
    check(name in known_model_names(), "weights_missing",
          f"\"{model}\" is not a model ultralytics publishes (such as \"yolov8n.pt\", \"yolo11n.pt\"). "
          + (f"A bare name never means a file in the working directory: to use {here}, give its path, "
             f"\"./{name}\"." if os.path.isfile(here) else "Give the path of a .pt file."))
    if not download or is_offline():
        raise _weights_missing(name, cached, "this machine is offline")
    return _download(name, cached)


def _weights_missing(name, cached, why):
    return TidyvisionError(
        "weights_missing",
        f"The weights \"{name}\" are not on this machine ({cached}) "
        f"and {why}. On a connected machine, run it once with model = \"{name}\", or download {name} "
        f"from {ASSETS_URL} and copy it to {cached}; or give the path of a .pt file as `model`.")


def _download(name, cached):
    from ultralytics.utils.downloads import attempt_download_asset
    log.info("Downloading %s to %s", name, cached)
    try:
        got = attempt_download_asset(str(cached))
    except Exception as e:
        raise _weights_missing(name, cached, f"the download failed ({type(e).__name__}: {e})") from None
    if not Path(got).is_file():
        raise _weights_missing(name, cached, "the download did not produce the file")
    return str(Path(got).resolve())


def load_model(model):
    """A YOLO detection model for a name or path, cached by file and modification time."""
    weights = resolve_weights(model)
    key = (weights, os.path.getmtime(weights))

    def load():
        yolo = open_yolo(weights)
        check(yolo.task in BOX_TASKS, "bad_argument",
              f"{weights} is a YOLO {yolo.task} model; detection needs a detect model such as yolov8n.pt.")
        return yolo
    return CACHE.get("detector", key, load)


def open_yolo(source):
    """``YOLO(source)`` for a weights file or model yaml, its failures as classed errors."""
    YOLO = ultralytics_module().YOLO
    try:
        return YOLO(source)
    except Exception as e:
        refused = unsafe_globals(source) if str(source).endswith(".pt") else []
        if refused:
            raise TidyvisionError(
                "weights_unsafe",
                f"{source} is not plain YOLO weights: loading it would run code it names "
                f"({', '.join(refused[:5])}). tidyvision loads .pt files weights-only and ran none "
                "of it. Use weights you trained with train_detector() or that ultralytics "
                "publishes, from a source you trust.") from None
        raise TidyvisionError(
            "weights_unreadable",
            f"ultralytics can't load {source} ({type(e).__name__}: {e}). "
            "Give a YOLO .pt file saved by ultralytics, or a model .yaml.") from None


def model_info(model):
    """Class names (in index order), task and training image size of a YOLO model."""
    yolo = load_model(model)
    names = yolo.names
    return {"weights": resolve_weights(model), "classes": [names[i] for i in sorted(names)],
            "task": yolo.task, "image_size": yolo.overrides.get("imgsz")}


def class_ids(classes, names):
    """Indices of the class names asked for; None means every class."""
    if classes is None:
        return None
    if isinstance(classes, str):
        classes = [classes]
    lookup = {name: i for i, name in names.items()}
    unknown = [c for c in classes if c not in lookup]
    check(not unknown, "unknown_class",
          f"The model has no class {', '.join(repr(c) for c in unknown)}. "
          f"Its classes: {', '.join(names[i] for i in sorted(names))}.")
    return [lookup[c] for c in classes]


# Detection ------------------------------------------------------------------

def decode_upright(path, min_side=None):
    """(upright RGB image, displayed (width, height), problem) for one path."""
    info = images.header_info(path)
    if not info["readable"]:
        return None, (None, None), info["problem"]
    im, problem = images.try_load_rgb(path, min_side)
    return im, (info["width"], info["height"]), problem


_COLUMNS = ("path", "object", "class", "confidence", "xmin", "ymin", "xmax", "ymax",
            "image_width", "image_height", "problem")


def _image_rows(out, path, result, size, problem):
    """Append one image's boxes (or its one empty row) to the columns ``out``."""
    width, height = size
    boxes = [] if result is None else result.boxes
    n = len(boxes)
    if n == 0:
        row = dict.fromkeys(_COLUMNS)
        row.update(path=path, image_width=width, image_height=height, problem=problem)
        for k in _COLUMNS:
            out[k].append(row[k])
        return
    xyxy = boxes.xyxy.float().cpu().numpy()
    h0, w0 = result.orig_shape  # the decoded image, possibly smaller than the file
    xyxy[:, [0, 2]] = (xyxy[:, [0, 2]] * (width / w0)).clip(0, width)
    xyxy[:, [1, 3]] = (xyxy[:, [1, 3]] * (height / h0)).clip(0, height)
    conf = boxes.conf.float().cpu().numpy()
    cls = boxes.cls.int().cpu().numpy()
    order = conf.argsort()[::-1]
    for j, i in enumerate(order, start=1):
        vals = (path, j, result.names[int(cls[i])], float(conf[i]), *map(float, xyxy[i]), width, height, None)
        for k, v in zip(_COLUMNS, vals):
            out[k].append(v)


def detect(paths, model="yolov8n.pt", confidence=0.25, iou=0.7, classes=None, image_size=None,
           batch_size=16, device="auto", progress=None):
    """Boxes for every path, in pixels of the image as displayed (EXIF-rotated).

    One row per box, most confident first within an image (``object`` is
    1-based); an image without boxes, or that can't be read, is one row
    with ``object`` None (and a ``problem`` when unreadable).
    """
    paths = [str(p) for p in paths]
    batches = detect_batches(images.batched(paths, int(batch_size)), model, confidence, iou, classes,
                             image_size, device)
    return images.collect(batches, _COLUMNS, len(paths), progress)


def detect_batches(batches, model="yolov8n.pt", confidence=0.25, iou=0.7, classes=None, image_size=None,
                   device="auto"):
    """(offset, paths, columns) for each batch of paths: the loop of detect(),
    shared with classify_folder() (corpus.py)."""
    yolo = load_model(model)
    imgsz = int(image_size) if image_size else int(yolo.overrides.get("imgsz") or 640)
    args = dict(conf=float(confidence), iou=float(iou), classes=class_ids(classes, yolo.names),
                imgsz=imgsz, device=yolo_device(device), verbose=False, save=False)
    with torch_state(), images.quiet_bomb_warnings():
        for offset, chunk, decoded in images.prefetched_batches(batches, lambda p: decode_upright(p, imgsz)):
            out = {k: [] for k in _COLUMNS}
            ok = [d[0] for d in decoded if d[0] is not None]
            results = iter(yolo.predict(ok, **args) if ok else [])
            for path, (im, size, problem) in zip(chunk, decoded):
                _image_rows(out, path, next(results) if im is not None else None, size, problem)
            yield offset, chunk, out
