"""What local_tidyvision() changes for a test, and puts back after it."""
import os

from .cache import CACHE

_VARS = ("TIDYVISION_CACHE_DIR", "TIDYVISION_PRECISION")


def enter(cache_dir):
    """One thread, deterministic algorithms, fp32, an empty memory cache and
    ``cache_dir`` as the cache folder. Returns what was there before."""
    import torch
    old = {"threads": torch.get_num_threads(), "deterministic": torch.are_deterministic_algorithms_enabled(),
           "env": {k: os.environ.get(k) for k in _VARS}}
    os.environ.update(TIDYVISION_CACHE_DIR=str(cache_dir), TIDYVISION_PRECISION="fp32")
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True, warn_only=True)
    CACHE.clear()
    return old


def leave(old):
    import torch
    for k, v in old["env"].items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    torch.set_num_threads(int(old["threads"]))
    torch.use_deterministic_algorithms(bool(old["deterministic"]))
    CACHE.clear()
