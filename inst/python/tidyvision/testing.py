"""Image fixtures built with Pillow, shared by pytest and testthat."""
import io
import os
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def _jpeg_bytes(im, **kw):
    buf = io.BytesIO()
    im.save(buf, "JPEG", **kw)
    return buf.getvalue()


def photo_like(seed, size=(60, 40), hue=None):
    """A smooth random RGB image (not flat, so JPEG and hashing behave)."""
    rng = np.random.default_rng(seed)
    w, h = size
    small = rng.integers(0, 255, (max(2, h // 8), max(2, w // 8), 3), dtype=np.uint8)
    im = Image.fromarray(small).resize((w, h), Image.BICUBIC)
    if hue is not None:
        arr = np.asarray(im).astype(np.float32) * 0.5
        arr[..., hue] += 120
        im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    return im


def make_odd_folder(root):
    """Every odd and bad kind of file image_files() must handle, in one tree."""
    root = Path(root)
    for d in ("cat", "dog", "bad", "with space", "ñandú"):
        (root / d).mkdir(parents=True, exist_ok=True)
    base = photo_like(1)
    base.save(root / "cat" / "normal.jpg")
    base.save(root / "cat" / "UPPER.JPG")
    exif = Image.Exif()
    exif[0x0112] = 6
    base.save(root / "cat" / "rotated.jpg", exif=exif)
    base.convert("CMYK").save(root / "dog" / "cmyk.jpg")
    base.convert("L").save(root / "dog" / "gray.png")
    Image.fromarray((np.asarray(base.convert("L"), dtype=np.uint16) * 257)).save(root / "dog" / "sixteen.png")
    base.convert("P").save(root / "dog" / "palette.gif")
    base.convert("RGBA").save(root / "dog" / "alpha.png")
    base.save(root / "dog" / "photo.webp")
    base.save(root / "dog" / "photo.bmp")
    base.save(root / "dog" / "photo.tiff")
    base.save(root / "with space" / "a photo.png")
    base.save(root / "ñandú" / "é.jpg")
    jpeg = _jpeg_bytes(photo_like(2, (200, 150)))
    (root / "bad" / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    buf = io.BytesIO()
    photo_like(3, (200, 150)).save(buf, "PNG")
    (root / "bad" / "truncated.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (root / "bad" / "empty.jpg").write_bytes(b"")
    (root / "bad" / "text.png").write_text("this is not an image\n")
    (root / "bad" / "bomb.bmp").write_bytes(bomb_bmp())
    (root / "notes.txt").write_text("not an image, ignored\n")
    return str(root)


def bomb_bmp(width=30000, height=30000):
    """A BMP header claiming 900 megapixels: past Pillow's bomb limit."""
    header = struct.pack("<2sIHHI", b"BM", 54, 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return header + info + b"\x00" * 64


def make_class_folder(root, n_per_class=12, size=64, classes=("red", "blue"), split=None, seed=0):
    """A separable set: each class is tinted towards one colour channel."""
    root = Path(root)
    channels = {"red": 0, "green": 1, "blue": 2}
    paths = []
    for k, cls in enumerate(classes):
        folder = root / split / cls if split else root / cls
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            im = photo_like(seed * 100_000 + k * 1000 + i, (size, size), hue=channels.get(cls, k % 3))
            path = folder / f"{cls}_{i:03d}.jpg"
            im.save(path, quality=90)
            paths.append(str(path))
    return paths


def write_copy(src, dst, kind):
    """A near-copy of ``src``: re-encoded, resized, PNG-converted or cropped."""
    im = Image.open(src).convert("RGB")
    w, h = im.size
    if kind == "jpeg40":
        im.save(dst, "JPEG", quality=40)
    elif kind == "half":
        im.resize((w // 2, h // 2), Image.LANCZOS).save(dst)
    elif kind == "png":
        im.save(dst, "PNG")
    elif kind == "crop3":
        dx, dy = round(w * 0.03), round(h * 0.03)
        im.crop((dx, dy, w - dx, h - dy)).save(dst)
    else:
        raise ValueError(kind)
    return os.fspath(dst)
