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
    # A phone's export: an iPhone photo (HEIC) and a video beside the photos.
    from tidyvision import images
    if images.HEIF:
        base.save(root / "cat" / "iphone.heic")
    (root / "cat" / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))
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


# Data preparation (issue 5) ------------------------------------------------
# Builders for find_duplicates()' benchmark; the tests use write_copy().

def _bench_copy(args):
    src, dst, seed, long_side = args
    rng = np.random.default_rng(seed)
    im = Image.open(src).convert("RGB")
    w, h = im.size
    # Up to 4% off each border, a +-10% tint per channel, a new size and quality.
    fx, fy = rng.uniform(0, 0.04, 2), rng.uniform(0, 0.04, 2)
    im = im.crop((round(w * fx[0]), round(h * fy[0]), round(w * (1 - fx[1])), round(h * (1 - fy[1]))))
    arr = np.asarray(im, dtype=np.float32) * rng.uniform(0.9, 1.1, 3)
    im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    scale = long_side * rng.uniform(0.75, 1.0) / max(im.size)
    im = im.resize((max(1, round(im.size[0] * scale)), max(1, round(im.size[1] * scale))), Image.BILINEAR)
    im.save(dst, "JPEG", quality=int(rng.integers(75, 96)))
    return dst


def make_bench_copies(sources, root, n, seed=1, long_side=800, workers=None):
    """``n`` JPEG near-copies of ``sources`` (copy i from source i % len):
    randomly cropped, tinted, resized and re-encoded so no two hash alike."""
    from tidyvision.images import parallel_map
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    sources = list(sources)
    jobs = [(sources[i % len(sources)], str(root / f"img{i:05d}.jpg"), seed * 1_000_003 + i, long_side)
            for i in range(int(n))]
    return parallel_map(_bench_copy, jobs, workers)


# Faces (issue 8) -------------------------------------------------------------
# Test cases made from the shipped face photos (inst/extdata/faces).

def face_variants(src, root):
    """Augmented copies of one photo: mirrored, brighter, darker, and turned
    by 8 degrees then cropped by 4% per side. Returns their paths."""
    from PIL import ImageEnhance, ImageOps
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    im = Image.open(src).convert("RGB")
    w, h = im.size
    turned = im.rotate(8, resample=Image.BICUBIC, fillcolor=(128, 128, 128))
    variants = {
        "mirrored": ImageOps.mirror(im),
        "brighter": ImageEnhance.Brightness(im).enhance(1.15),
        "darker": ImageEnhance.Brightness(im).enhance(0.85),
        "turned": turned.crop((round(w * .04), round(h * .04), round(w * .96), round(h * .96))),
    }
    stem = Path(src).stem
    paths = []
    for name, variant in variants.items():
        path = root / f"{stem}_{name}.jpg"
        variant.save(path, quality=92)
        paths.append(str(path))
    return paths


def face_crowd(sources, boxes, dst, face_width=44, gap=24, height=None):
    """A row of small faces: each source photo scaled so that its face (the
    box ``[xmin, ymin, xmax, ymax]``) is ``face_width`` px wide, cut out with
    some context and pasted side by side on grey. Returns the faces' boxes
    in the new image."""
    pieces, placed, x = [], [], gap
    for src, (x0, y0, x1, y1) in zip(sources, boxes):
        im = Image.open(src).convert("RGB")
        pad = 0.8 * (x1 - x0)
        left, top = max(0, x0 - pad), max(0, y0 - pad)
        piece = im.crop((round(left), round(top), round(min(im.width, x1 + pad)),
                         round(min(im.height, y1 + pad))))
        scale = face_width / (x1 - x0)
        piece = piece.resize((round(piece.width * scale), round(piece.height * scale)), Image.LANCZOS)
        pieces.append((piece, x))
        placed.append([x + (x0 - left) * scale, gap + (y0 - top) * scale,
                       x + (x1 - left) * scale, gap + (y1 - top) * scale])
        x += piece.width + gap
    height = height or max(p.height for p, _ in pieces) + 2 * gap
    canvas = Image.new("RGB", (x, height), (128, 132, 136))
    for piece, left in pieces:
        canvas.paste(piece, (left, gap))
    canvas.save(dst, quality=92)
    return placed


# Detection and tagging (issue 7) -------------------------------------------
# Noise backgrounds with solid shapes: a red square or a blue disc per image.

SHAPES = ("square", "disc")


def _draw_shape(im, kind, rng):
    from PIL import ImageDraw
    w, h = im.size
    s = int(rng.integers(min(w, h) // 4, min(w, h) // 2))
    x0, y0 = int(rng.integers(0, w - s)), int(rng.integers(0, h - s))
    draw = ImageDraw.Draw(im)
    if kind == "square":
        draw.rectangle([x0, y0, x0 + s - 1, y0 + s - 1], fill=(230, 30, 30))
    else:
        draw.ellipse([x0, y0, x0 + s - 1, y0 + s - 1], fill=(30, 30, 230))
    return [x0, y0, x0 + s, y0 + s]


def make_shapes(root, n=24, size=(128, 128), n_empty=0, seed=0):
    """``n`` JPEGs with one shape each (alternating square, disc) and
    ``n_empty`` with none, as tidy boxes: columns path, class, xmin, ymin,
    xmax, ymax in pixels (class and box None for the empty images)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {k: [] for k in ("path", "class", "xmin", "ymin", "xmax", "ymax")}
    for i in range(n + n_empty):
        im = photo_like(seed * 10_000 + i, tuple(size))
        kind = SHAPES[i % 2] if i < n else None
        box = _draw_shape(im, kind, rng) if kind else [None] * 4
        path = root / f"shape{i:03d}.jpg"
        im.save(path, quality=92)
        for k, v in zip(out, [str(path), kind, *box]):
            out[k].append(v)
    return out


def write_yolo_folder(root, shapes):
    """The same boxes as a YOLO dataset: images/, labels/ and a data.yaml
    with relative paths (train and val both the one folder)."""
    import shutil
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(exist_ok=True)
    lines = {}
    for path, kind, *box in zip(*shapes.values()):
        w, h = Image.open(path).size
        lines.setdefault(path, [])
        if kind is not None:
            x0, y0, x1, y1 = box
            lines[path].append(f"{SHAPES.index(kind)} {(x0 + x1) / 2 / w} {(y0 + y1) / 2 / h} "
                               f"{(x1 - x0) / w} {(y1 - y0) / h}")
    for path, rows in lines.items():
        shutil.copy(path, root / "images" / Path(path).name)
        (root / "labels" / (Path(path).stem + ".txt")).write_text("".join(r + "\n" for r in rows))
    (root / "data.yaml").write_text("path: .\ntrain: images\nval: images\nnames:\n  0: square\n  1: disc\n")
    return str(root / "data.yaml")


def exif_rotated_copy(src, dst, orientation=6):
    """A copy stored turned, with the EXIF orientation that displays it as ``src``."""
    im = Image.open(src).convert("RGB")
    stored = im.transpose({6: Image.ROTATE_90, 8: Image.ROTATE_270, 3: Image.ROTATE_180}[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.save(dst, "JPEG", quality=95, exif=exif)
    return os.fspath(dst)


def pixels(path):
    """The decoded RGB pixels of ``path`` (h, w, 3, uint8), upright."""
    from tidyvision.images import load_rgb
    return np.asarray(load_rgb(path))


def body_change(weights_path, backbone, n_classes):
    """The largest absolute difference between the body weights in a saved
    classifier and the backbone's pretrained ones (0 after head-only training)."""
    from safetensors.torch import load_file
    from tidyvision.classifier import build_classifier
    saved = load_file(str(weights_path))
    pretrained = build_classifier(backbone, int(n_classes), pretrained=True).state_dict()
    body = [k for k in pretrained if k.startswith("body.")]
    assert body and all(k in saved for k in body)
    return max(float((saved[k].float() - pretrained[k].float()).abs().max()) for k in body)


# Embeddings (issue 16) -------------------------------------------------------
# Semantic copies of the shipped photos: what phash misses and embeddings find.

MEME_TEXT = ("WHEN THE MODEL", "SEES IT")


def meme_copy(src, dst, band=0.18, colour="white", where="top", text=MEME_TEXT):
    """A meme-style copy: the same photo with a band of text (white on black or
    black on white) covering ``band`` of its height, at the top or bottom."""
    from PIL import ImageDraw, ImageFont
    im = Image.open(src).convert("RGB")
    w, h = im.size
    bh = round(h * band)
    y0 = 0 if where == "top" else h - bh
    fill, ink = ((255, 255, 255), (0, 0, 0)) if colour == "white" else ((0, 0, 0), (255, 255, 255))
    draw = ImageDraw.Draw(im)
    draw.rectangle((0, y0, w, y0 + bh), fill=fill)
    font = ImageFont.load_default(size=max(8, bh // (len(text) + 1)))
    for k, line in enumerate(text):
        draw.text((w / 2, y0 + bh * (k + 1) / (len(text) + 1)), line, fill=ink, font=font, anchor="mm")
    im.save(dst, quality=90)
    return os.fspath(dst)


def augmented_copies(src, root, kinds=("mirrored", "cropped", "recoloured", "meme")):
    """Copies of one photo a person would call the same picture: mirrored,
    cropped by 10% a side, re-coloured (saturation and warmth) and with a meme
    text band. Returns their paths, in the order of ``kinds``."""
    from PIL import ImageEnhance, ImageOps
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    im = Image.open(src).convert("RGB")
    w, h = im.size
    stem = Path(src).stem
    paths = []
    for kind in kinds:
        path = root / f"{stem}_{kind}.jpg"
        if kind == "meme":
            paths.append(meme_copy(src, path))
            continue
        if kind == "mirrored":
            out = ImageOps.mirror(im)
        elif kind == "cropped":
            out = im.crop((round(w * .1), round(h * .1), round(w * .9), round(h * .9)))
        elif kind == "recoloured":
            warm = np.asarray(ImageEnhance.Color(im).enhance(1.6), np.float32) * (1.12, 1.0, 0.85)
            out = Image.fromarray(np.clip(warm, 0, 255).astype(np.uint8))
        else:
            raise ValueError(kind)
        out.save(path, quality=90)
        paths.append(str(path))
    return paths


# Explanations (issue 16) -----------------------------------------------------
# Real photo backgrounds where only a red square decides the class.

def make_square_set(sources, root, n=48, size=224, square=64, seed=0):
    """``n`` images in pairs: a square crop of one of the photos ``sources``,
    resized to ``size``, as it is ("plain"), then the same crop with a red
    ``square`` at a random position ("square"). Within a pair only the square
    differs, so it alone decides the class. Returns columns path, label, x0,
    y0 (the square's top-left pixel; None for plain images)."""
    from PIL import ImageDraw
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sources = sorted(sources)
    out = {k: [] for k in ("path", "label", "x0", "y0")}
    for i in range(int(n)):
        if i % 2 == 0:
            with Image.open(sources[int(rng.integers(len(sources)))]) as src:
                photo = src.convert("RGB")
            w, h = photo.size
            s = min(w, h)
            left, top = int(rng.integers(0, w - s + 1)), int(rng.integers(0, h - s + 1))
            photo = photo.crop((left, top, left + s, top + s)).resize((size, size), Image.BILINEAR)
        im, x0, y0 = photo.copy(), None, None
        if i % 2 == 1:
            x0, y0 = (int(v) for v in rng.integers(0, size - square + 1, 2))
            ImageDraw.Draw(im).rectangle([x0, y0, x0 + square - 1, y0 + square - 1], fill=(230, 30, 30))
        label = "plain" if x0 is None else "square"
        path = root / f"{label}_{i:03d}.png"
        im.save(path)
        for k, v in zip(out, [str(path), label, x0, y0]):
            out[k].append(v)
    return out


def reinit_head(weights_path, dst, seed=0):
    """A copy of a saved classifier whose last layer is drawn afresh as
    fine_tune() initialises it (N(0, 0.01), zero bias): the model
    randomisation of Adebayo et al. (2018)."""
    import torch
    from safetensors.torch import load_file, save_file
    state = load_file(str(weights_path))
    gen = torch.Generator().manual_seed(int(seed))
    state["head.weight"] = torch.randn(state["head.weight"].shape, generator=gen) * 0.01
    state["head.bias"] = torch.zeros_like(state["head.bias"])
    save_file(state, str(dst))
    return str(dst)


def random_resnet18_weights(dst, seed=0):
    """An ImageNet-shaped ResNet18 state dict with random weights, saved as
    .pth: a local weights file, as a machine without the download uses."""
    import torch
    from torchvision.models import resnet18
    torch.manual_seed(int(seed))
    torch.save(resnet18(weights=None).state_dict(), str(dst))
    return str(dst)


class _Payload:
    """What a hostile .pt holds: unpickling it runs code (here, it writes a marker file)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def plant_payload(path, marker, weights=None):
    """A .pt that runs code when unpickled (it writes ``marker``): alone, or
    planted inside a real, working checkpoint ``weights`` (our own test file,
    so reading it in full here is safe)."""
    import torch
    ckpt = torch.load(weights, map_location="cpu", weights_only=False) if weights else {}
    ckpt["extra"] = _Payload(marker)
    torch.save(ckpt, path)
    return str(path)
