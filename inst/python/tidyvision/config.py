"""Device, precision and threads, resolved once; and what tv_config() shows."""
import importlib.metadata
import os
import platform
import sys

from .errors import check

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")


def cache_dir(*parts):
    """tidyvision's folder in the user cache (``TIDYVISION_CACHE_DIR`` overrides it)."""
    root = os.environ.get("TIDYVISION_CACHE_DIR")
    if not root:
        if sys.platform == "win32":
            root = os.path.join(os.environ.get("LOCALAPPDATA", os.path.expanduser("~")), "tidyvision", "Cache")
        elif sys.platform == "darwin":
            root = os.path.expanduser("~/Library/Caches/tidyvision")
        else:
            root = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tidyvision")
    path = os.path.join(root, *parts)
    os.makedirs(path, exist_ok=True)
    return path


def resolve_device(device="auto"):
    import torch
    check(device in DEVICES, "bad_argument",
          f"`device` must be one of {', '.join(DEVICES)}, not {device!r}.")
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if device == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    check(device != "cuda" or cuda, "device_unavailable",
          "`device = \"cuda\"` was asked for but torch sees no CUDA GPU; use \"auto\" or \"cpu\".")
    check(device != "mps" or mps, "device_unavailable",
          "`device = \"mps\"` was asked for but this machine has no Apple GPU; use \"auto\" or \"cpu\".")
    return device


def resolve_precision(precision, device):
    """The precision asked for; for "auto", bf16 (or fp16) autocast on GPUs and fp32
    elsewhere. On a CPU, "auto" with a model at hand is measured instead: speed.choose()."""
    check(precision in PRECISIONS, "bad_argument",
          f"`precision` must be one of {', '.join(PRECISIONS)}, not {precision!r}.")
    if precision != "auto":
        return precision
    if device == "cuda":
        import torch
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


# Images per forward pass for inference on a CPU. A few images keep the
# activations in the processor's cache: measured here, EfficientNet-Lite0 in
# bf16 ran ~1.6x faster at 8 per pass than at 64 (bench/fine_tune.py prints it).
CPU_FORWARD_BATCH = 8


def forward_batch(device, batch_size):
    """Images per inference forward pass: ``batch_size`` on a GPU, at most
    CPU_FORWARD_BATCH on a CPU."""
    batch_size = max(1, int(batch_size))
    return min(batch_size, CPU_FORWARD_BATCH) if device == "cpu" else batch_size


def autocast(device, precision):
    import contextlib
    import torch
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type="cuda" if device == "cuda" else device, dtype=dtype)


def seed_everything(seed):
    import random
    import numpy as np
    import torch
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions():
    return {p: version(p) for p in (
        "torch", "torchvision", "ultralytics", "pillow", "numpy",
        "safetensors", "imagehash", "dlib-bin")}


def describe():
    """Everything tv_config() prints, as plain values."""
    import torch
    from . import speed
    from .backbones import offline_backbones
    from .cache import CACHE
    device = resolve_device("auto")
    return {
        "python": sys.executable,
        "python_version": platform.python_version(),
        "engine": os.path.dirname(os.path.abspath(__file__)),
        "versions": versions(),
        "device": device,
        "precision": resolve_precision("auto", device),
        "bf16_kernels": speed.bf16_kernels()[0],
        "cpu_capability": speed.bf16_kernels()[1],
        "precision_measured": _measured_columns(),
        "threads": torch.get_num_threads(),
        "cores": os.cpu_count(),
        "backbones_offline": offline_backbones(),
        "cache_bytes": float(sum(CACHE.describe()["bytes"])),
        "cache_budget": float(CACHE.budget),
    }


def _measured_columns():
    """speed.py's measurements on this machine, as columns."""
    from . import speed
    rows = list(speed.measured().values())
    keys = ("kind", "backbone", "image_size", "batch_size", "precision", "fp32_ms", "bf16_ms", "ratio", "measured")
    return {k: [r.get(k) for r in rows] for k in keys}
