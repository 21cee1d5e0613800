"""The book's preprocessing (section 4), written once.

fine_tune(), predict(), plot_resizing() and plot_augmentation() all call these
functions, so what a user sees in the plots is what the model sees.

Images are decoded once per call and kept as uint8 tensors (C, H, W):
``train_base`` keeps the photo at up to twice the input size for random crops,
``resize_image`` gives the fixed ``size x size`` input of validation and
prediction.
"""
import math

import numpy as np
from PIL import Image

from . import images
from .backbones import IMAGENET_MEAN, IMAGENET_STD
from .errors import check

RESIZE_MODES = ("rescale_crop", "squish", "crop", "pad")
# Memory for the decoded training images of one fit; past it, train_side() shrinks.
TRAIN_MEMORY = 2 * 1024 ** 3
# RandomResizedCrop's defaults, as in the book's Listing 1.
CROP_SCALE = (0.08, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)


def rescale_side(size):
    return int(round(size * 256 / 224))


def check_mode(mode):
    check(mode in RESIZE_MODES, "bad_argument",
          f"`resize` must be one of {', '.join(RESIZE_MODES)}, not {mode!r}.")


def _scale_short_side(im, side):
    w, h = im.size
    s = side / min(w, h)
    return im.resize((max(side, round(w * s)), max(side, round(h * s))), Image.BILINEAR)


def _center_crop(im, size):
    """Centre crop size x size, padding with black where the image is smaller."""
    w, h = im.size
    left, top = (w - size) // 2, (h - size) // 2
    return im.crop((left, top, left + size, top + size))


def resize_image(im, mode, size):
    """One PIL RGB image to size x size by the book's four strategies."""
    check_mode(mode)
    if mode == "rescale_crop":
        return _center_crop(_scale_short_side(im, rescale_side(size)), size)
    if mode == "squish":
        return im.resize((size, size), Image.BILINEAR)
    if mode == "crop":
        return _center_crop(im, size)
    w, h = im.size
    s = size / max(w, h)
    inner = im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BILINEAR)
    canvas = Image.new("RGB", (size, size))
    canvas.paste(inner, ((size - inner.size[0]) // 2, (size - inner.size[1]) // 2))
    return canvas


def decode_min_side(mode, size):
    """JPEG draft size that loses nothing for this resize mode."""
    return None if mode == "crop" else rescale_side(size)


def train_side(size, n_images, memory=TRAIN_MEMORY):
    """The shorter side random crops are drawn from.

    The book's loop crops the full photo, so a crop of 8% of its area still
    holds real detail. Keeping twice the input size gives that detail to
    crops down to a quarter of the area; past ``memory`` bytes for
    ``n_images`` (4:3 photos) the side shrinks, never below size * 256 / 224.
    """
    fits = int(math.sqrt(memory / (max(1, n_images) * 3 * 4 / 3)))
    return max(rescale_side(size), min(2 * size, fits))


def train_base(im, side):
    """What random crops are drawn from: the photo shrunk to a shorter side of
    ``side`` (see train_side); smaller photos are kept as they are, as the
    book's loop crops them."""
    return im if min(im.size) <= side else _scale_short_side(im, side)


def to_tensor_u8(im):
    import torch
    return torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()


def decode_many(paths, fn, min_side, workers=None, tick=None):
    """Decode each path once and apply ``fn`` (PIL -> anything) in threads.

    Returns (results, problems): a result of None has its problem set.
    ``tick(n)`` is called with each finished image, from this thread: R's
    progress callback must never run on a worker thread.
    """
    def one(path):
        im, problem = images.try_load_rgb(path, min_side)
        if im is None:
            return None, problem
        try:
            return fn(im), None
        except Exception as e:
            return None, f"{type(e).__name__}: {e}"
    if tick is None:
        pairs = images.parallel_map(one, paths, workers)
    else:
        pairs = _map_ticking(one, paths, workers or images.default_workers(), tick)
    return [r for r, _ in pairs], [p for _, p in pairs]


def _map_ticking(fn, items, workers, tick):
    """parallel_map() whose results, arriving in order here, each call ``tick(1)``."""
    from concurrent.futures import ThreadPoolExecutor
    out = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for result in pool.map(fn, items):
            out.append(result)
            tick(1)
    return out


def random_resized_crop(img, size, generator):
    """torchvision's RandomResizedCrop on one uint8 tensor, with our generator."""
    import math
    import torch
    from torchvision.transforms.v2 import functional as F
    _, h, w = img.shape
    area = h * w
    log_ratio = (math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]))
    for _ in range(10):
        target = area * torch.empty(1).uniform_(*CROP_SCALE, generator=generator).item()
        ratio = math.exp(torch.empty(1).uniform_(*log_ratio, generator=generator).item())
        cw, ch = int(round(math.sqrt(target * ratio))), int(round(math.sqrt(target / ratio)))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(torch.randint(0, h - ch + 1, (1,), generator=generator))
            left = int(torch.randint(0, w - cw + 1, (1,), generator=generator))
            return F.resized_crop(img, top, left, ch, cw, [size, size], antialias=True)
    side = min(h, w)  # the fallback torchvision uses: a centre crop
    return F.resized_crop(img, (h - side) // 2, (w - side) // 2, side, side, [size, size], antialias=True)


def augment_batch(bases, size, generator, augment=True):
    """A training batch: random resized crop + horizontal flip, as uint8 NCHW."""
    import torch
    out = []
    for img in bases:
        if augment:
            img = random_resized_crop(img, size, generator)
            if torch.rand(1, generator=generator).item() < 0.5:
                img = img.flip(-1)
        else:
            img = center_crop_tensor(img, size)
        out.append(img)
    return torch.stack(out)


def center_crop_tensor(img, size):
    _, h, w = img.shape
    top, left = (h - size) // 2, (w - size) // 2
    return img[:, top:top + size, left:left + size]


def normalize(batch_u8, device="cpu"):
    """uint8 NCHW -> float, ImageNet-normalised, channels_last."""
    import torch
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1) * 255
    x = batch_u8.to(device, non_blocking=True).float().sub_(mean).div_(std)
    return x.contiguous(memory_format=torch.channels_last)


# For plots --------------------------------------------------------------

def resize_examples(path, size=224):
    """Each resize mode applied to one image, decoded as prediction decodes it:
    mode -> (size, size, 3) uint8."""
    return {mode: np.asarray(resize_image(images.load_rgb(path, decode_min_side(mode, size)), mode, size))
            for mode in RESIZE_MODES}


def augment_examples(path, n=8, size=224, seed=1):
    """``n`` random crops/flips of one image exactly as training draws them."""
    import torch
    side = train_side(size, 1)
    base = to_tensor_u8(train_base(images.load_rgb(path, side), side))
    gen = torch.Generator().manual_seed(int(seed))
    batch = augment_batch([base] * int(n), size, gen)
    return [b.permute(1, 2, 0).numpy() for b in batch]
