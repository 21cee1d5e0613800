"""Listing image files by their headers, and decoding them to RGB once."""
import hashlib
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import check

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".heic", ".heif"}
# Files image_files() skips but names, by kind: tweet media folders hold videos beside photos.
VIDEO_EXTENSIONS = {".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".3gp", ".flv"}
# Split folder names as people spell them; R's normalize_split() reads the same file.
SPLIT_FOLDERS = json.loads((Path(__file__).parent / "split_aliases.json").read_text())
# EXIF orientations that turn the stored image by 90 degrees.
_TRANSPOSED = {5, 6, 7, 8}
_TAIL_BYTES = 4096


def _register_heif():
    """HEIC/HEIF (iPhone photos) through pillow-heif, where it is installed."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


HEIF = _register_heif()


def default_workers():
    return max(1, min(8, os.cpu_count() or 1))


def parallel_map(fn, items, workers=None):
    """Map in threads: Pillow's decoders release the GIL, so this uses every core."""
    items = list(items)
    workers = workers or default_workers()
    if workers == 1 or len(items) < 2:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items, chunksize=16))


def file_sha256(path):
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_image_path(path):
    """An image extension, and not macOS metadata: ``._name.jpg`` resource
    forks and everything under ``__MACOSX/`` (left by unzipping on a Mac)
    carry image extensions but hold no image."""
    p = Path(path)
    return (p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("._")
            and "__MACOSX" not in p.parts)


def find_image_paths(root, recursive=True, skipped=None):
    """Image files below ``root``, sorted, by name only (no file is opened):
    an os.scandir() walk lists a million files in seconds. Other files
    (hidden ones aside) are appended to ``skipped`` when it is a list."""
    root = Path(root)
    check(root.exists(), "path_not_found", f"Can't find the folder {root}.")
    check(root.is_dir(), "not_a_directory", f"{root} is a file, not a folder.")
    return sorted(_walk(str(root), recursive, skipped))


def _walk(folder, recursive, skipped=None):
    """The same files as is_image_path() over Path.rglob(): symlinked folders
    are not followed, ``__MACOSX`` folders and ``._`` files are skipped."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if recursive and entry.name != "__MACOSX":
                    yield from _walk(entry.path, recursive, skipped)
            elif entry.name.startswith(".") or not entry.is_file():
                continue
            elif os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
                yield entry.path
            elif skipped is not None:
                skipped.append(entry.path)


def file_kind(path):
    """"video" or "other": what image_files() says of a file it skips."""
    return "video" if os.path.splitext(str(path))[1].lower() in VIDEO_EXTENSIONS else "other"


def _skipped(paths):
    paths = sorted(paths)
    return {"path": paths, "kind": [file_kind(p) for p in paths],
            "extension": [os.path.splitext(p)[1].lower() for p in paths]}


def folder_label_split(path, root):
    """The label is the nearest parent folder that is not a split folder."""
    parts = Path(path).relative_to(root).parts[:-1]
    split = next((SPLIT_FOLDERS[p.lower()] for p in parts if p.lower() in SPLIT_FOLDERS), None)
    labels = [p for p in parts if p.lower() not in SPLIT_FOLDERS]
    return (labels[-1] if labels else None), split


def _tail(path, size):
    with open(path, "rb") as f:
        f.seek(max(0, size - _TAIL_BYTES))
        return f.read()


def _looks_complete(im, path, size):
    """A cheap end-of-file check per format; None means "decode to find out"."""
    fmt = im.format
    if fmt == "JPEG":
        return b"\xff\xd9" in _tail(path, size)
    if fmt == "PNG":
        return b"IEND" in _tail(path, size)[-64:]
    if fmt == "GIF":
        return _tail(path, size).rstrip(b"\x00").endswith(b";")
    if fmt == "WEBP":
        with open(path, "rb") as f:
            head = f.read(8)
        return int.from_bytes(head[4:8], "little") + 8 <= size
    return None


def _decodes(path):
    with Image.open(path) as im:
        im.load()


def _first_bytes(path):
    with open(path, "rb") as f:
        return f.read(8).hex(" ")


def header_info(path):
    """Size, format and displayed dimensions of one file, reading its header.

    Files that fail a cheap end-of-file check are decoded in full to be sure.
    Call it under quiet_bomb_warnings(): the pixel limit is checked here.
    """
    out = {"file_size": None, "width": None, "height": None, "format": None,
           "readable": False, "problem": None}
    try:
        size = os.path.getsize(path)
        out["file_size"] = size
        if size == 0:
            out["problem"] = "empty file (0 bytes)"
            return out
        with Image.open(path) as im:
            out["format"] = im.format
            out["width"], out["height"] = width, height = im.size
            if width * height > Image.MAX_IMAGE_PIXELS:
                out["problem"] = _bomb_problem(width, height)
                return out
            if im.getexif().get(0x0112, 1) in _TRANSPOSED:
                out["width"], out["height"] = height, width
            complete = _looks_complete(im, path, size)
        if complete is not True:
            _decodes(path)
        out["readable"] = True
    except Exception as e:  # a corrupt header can raise nearly anything in a plugin
        out["problem"] = problem_of(path, e)
    return out


def problem_of(path, e):
    """Why ``path`` can't be read, in the words image_files() uses everywhere."""
    if isinstance(e, FileNotFoundError):
        return "file not found"
    try:
        if os.path.getsize(path) == 0:
            return "empty file (0 bytes)"
    except OSError:
        pass
    if isinstance(e, Image.DecompressionBombError):
        return f"decompression bomb: {e}"
    if isinstance(e, UnidentifiedImageError):
        return f"not an image Pillow can read (first bytes: {_first_bytes(path)})"
    if isinstance(e, OSError):
        msg = str(e)
        return "truncated: " + msg if "truncated" in msg else "unreadable: " + msg
    return f"unreadable: {type(e).__name__}: {e}"


def _bomb_problem(width, height):
    return (f"decompression bomb: {width}x{height} = {width * height} pixels is past Pillow's "
            f"limit of {Image.MAX_IMAGE_PIXELS} (PIL.Image.MAX_IMAGE_PIXELS)")


@contextmanager
def quiet_bomb_warnings():
    """Pillow warns on large images; header_info() reports them as problems instead."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def columns(rows, keys):
    return {k: [r[k] for r in rows] for k in keys}


def list_images(root, recursive=True, workers=None):
    """One row per image file below ``root``: the columns of image_files(),
    and the files skipped (``skipped``: path, kind, extension)."""
    skipped = []
    out = _listing(find_image_paths(root, recursive, skipped), root, workers)
    out["skipped"] = _skipped(skipped)
    return out


def list_files(paths, workers=None):
    """The columns of image_files() for given files that have image names.

    Labels and splits come from folders below the files' deepest common
    folder, so listing every file of a folder gives what listing the folder
    gives.
    """
    given = [str(p) for p in paths]
    paths = [p for p in given if is_image_path(p)]
    root = os.path.commonpath([os.path.dirname(p) for p in paths]) if paths else ""
    out = _listing(paths, root, workers)
    out["skipped"] = _skipped(p for p in given if not is_image_path(p) and not Path(p).name.startswith(".")
                              and "__MACOSX" not in Path(p).parts)
    return out


def _listing(paths, root, workers=None):
    with quiet_bomb_warnings():
        rows = parallel_map(header_info, paths, workers)
    labels = [folder_label_split(p, root) for p in paths]
    out = {"path": paths,
           "label": [lab for lab, _ in labels],
           "split": [spl for _, spl in labels]}
    out.update(columns(rows, ["file_size", "width", "height", "format", "readable", "problem"]))
    return out


def image_info(paths, workers=None):
    """header_info() for a list of paths, as columns."""
    with quiet_bomb_warnings():
        rows = parallel_map(header_info, paths, workers)
    return columns(rows, ["file_size", "width", "height", "format", "readable", "problem"])


# Decoding -----------------------------------------------------------------

def to_rgb(im):
    """Any Pillow mode to 8-bit RGB: 16-bit scaled, transparency on white."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float32)
        top = 65535.0 if arr.max(initial=0) > 255 else 255.0
        im = Image.fromarray(np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8), "L")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)
    return im.convert("RGB")


def load_rgb(path, min_side=None):
    """Decode one image upright (EXIF orientation applied) as RGB.

    ``min_side`` lets JPEG decode at a reduced scale that still leaves both
    sides at least that long, which is several times faster for big photos.
    """
    with Image.open(path) as im:
        if min_side and im.format == "JPEG":
            im.draft("RGB", (min_side, min_side))
        im = ImageOps.exif_transpose(im)
        return to_rgb(im)


def try_load_rgb(path, min_side=None):
    """(image, None) or (None, problem) for one path; never raises."""
    try:
        return load_rgb(path, min_side), None
    except Exception as e:
        return None, problem_of(path, e)


def _thumbnail(args):
    path, size = args
    im, _ = try_load_rgb(path, size)
    if im is None:
        return None
    im.thumbnail((size, size), Image.BILINEAR)
    return np.asarray(im)


def thumbnails(paths, size=128, workers=None):
    """Small upright RGB arrays (h, w, 3, uint8) for plots; None where unreadable."""
    return parallel_map(_thumbnail, [(p, int(size)) for p in paths], workers)


def batched(items, size):
    items = list(items)
    return [items[i:i + size] for i in range(0, len(items), size)]


def collect(batches, columns, total, progress=None):
    """The columns of every (offset, chunk, columns) batch, joined, ticking
    ``progress`` after each: the whole-call form of a per-batch generator."""
    out = {k: [] for k in columns}
    for offset, chunk, cols in batches:
        for k in columns:
            out[k].extend(cols[k])
        if progress is not None:
            progress(offset + len(chunk), total)
    return out


def prefetched(items, size, decode):
    """(offset, chunk, decoded) for chunks of ``items``: the next chunk decodes
    in threads while the caller works on this one."""
    return prefetched_batches(batched(items, size), decode)


def prefetched_batches(chunks, decode):
    """prefetched() over chunks the caller cut (they may differ in size)."""
    def job(chunk):
        return parallel_map(decode, chunk)

    offset = 0
    with ThreadPoolExecutor(max_workers=1) as ahead:
        pending = ahead.submit(job, chunks[0]) if chunks else None
        for k, chunk in enumerate(chunks):
            decoded = pending.result()
            if k + 1 < len(chunks):
                pending = ahead.submit(job, chunks[k + 1])
            yield offset, chunk, decoded
            offset += len(chunk)
