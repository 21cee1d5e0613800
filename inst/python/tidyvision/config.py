"""Device, precision and threads, resolved once; and what tv_config() shows."""
import importlib.metadata
import os
import platform
import sys
from functools import lru_cache

from .errors import check

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")


@lru_cache(maxsize=1)
def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def bf16_fast_on_cpu():
    """AMX or AVX-512 BF16 make bf16 autocast several times faster than fp32."""
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


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
    """bf16 where the hardware runs it fast, fp16 autocast on GPUs, else fp32."""
    check(precision in PRECISIONS, "bad_argument",
          f"`precision` must be one of {', '.join(PRECISIONS)}, not {precision!r}.")
    if precision != "auto":
        return precision
    if device == "cuda":
        import torch
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device == "cpu" and bf16_fast_on_cpu():
        return "bf16"
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
        "bf16_fast": bf16_fast_on_cpu(),
        "threads": torch.get_num_threads(),
        "cores": os.cpu_count(),
        "backbones_offline": offline_backbones(),
        "cache_bytes": float(sum(CACHE.describe()["bytes"])),
        "cache_budget": float(CACHE.budget),
    }
