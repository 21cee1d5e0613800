"""The engine's one cache: what it keeps between calls (decoded images,
frozen-body features, loaded models), with a size budget that R can read
(tv_cache()) and clear (tv_cache_clear()).

Each entry lives in a named space ("decoded", "features", "classifier", ...)
that keeps at most ``keep`` entries, the most recently used; past the byte
budget the least recently used entries of any space go first. Sizes are
measured when asked for (a pool of model copies grows after it is stored),
not guessed: NumPy arrays and torch tensors by their bytes, torch
modules by their parameters and buffers, anything else by what its
``cache_nbytes`` attribute says (0 if it has none).
"""
import gc
import threading
from collections import OrderedDict

GiB = 1024 ** 3
DEFAULT_BUDGET = 3 * GiB


class Cache:
    def __init__(self, budget=DEFAULT_BUDGET):
        self.budget = int(budget)
        self._entries = OrderedDict()  # (space, key) -> value
        self._lock = threading.RLock()

    def get(self, space, key, compute, keep=1):
        """The cached value of ``key`` in ``space``, computed on a miss. Older
        entries of the space are dropped before computing, so their memory is
        free for the new one."""
        with self._lock:
            if (space, key) in self._entries:
                self._entries.move_to_end((space, key))
                return self._entries[(space, key)]
            self._trim_space(space, keep - 1)
        value = compute()
        with self._lock:
            self._entries[(space, key)] = value
            self._trim_budget()
        return value

    def clear(self, space=None):
        """Drop every entry (or one space's); returns the bytes freed."""
        with self._lock:
            gone = [k for k in self._entries if space is None or k[0] == space]
            freed = sum(nbytes(self._entries.pop(k)) for k in gone)
        give_back_memory()
        return freed

    def describe(self):
        """Columns for R: one row per space with entries and bytes."""
        with self._lock:
            spaces = {}
            for (space, _), value in self._entries.items():
                n, b = spaces.get(space, (0, 0))
                spaces[space] = (n + 1, b + nbytes(value))
        names = sorted(spaces)
        return {"space": names, "entries": [spaces[s][0] for s in names],
                "bytes": [float(spaces[s][1]) for s in names], "budget": float(self.budget)}

    def set_budget(self, budget):
        with self._lock:
            self.budget = int(budget)
            self._trim_budget()
        return float(self.budget)

    def _trim_space(self, space, keep):
        mine = [k for k in self._entries if k[0] == space]
        for k in mine[:max(0, len(mine) - max(0, keep))]:
            del self._entries[k]

    def _trim_budget(self):
        # The newest entry stays even when it alone is over the budget: it
        # was just computed and is about to be used.
        while len(self._entries) > 1 and sum(map(nbytes, self._entries.values())) > self.budget:
            self._entries.popitem(last=False)


def nbytes(value, _seen=None):
    """Bytes held by arrays, tensors and modules inside ``value``."""
    seen = _seen if _seen is not None else set()
    if id(value) in seen:
        return 0
    seen.add(id(value))
    own = getattr(value, "cache_nbytes", None)
    if isinstance(own, int):
        return own
    if hasattr(value, "nbytes") and hasattr(value, "dtype"):  # NumPy
        return int(value.nbytes)
    if hasattr(value, "element_size") and hasattr(value, "nelement"):  # torch.Tensor
        return int(value.element_size() * value.nelement())
    if hasattr(value, "parameters") and hasattr(value, "buffers"):  # torch.nn.Module
        return sum(nbytes(t, seen) for t in (*value.parameters(), *value.buffers()))
    if isinstance(value, dict):
        return sum(nbytes(v, seen) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(nbytes(v, seen) for v in value)
    return 0


def give_back_memory():
    """Collect, then ask glibc to return freed heap pages to the system, so
    the process's RSS falls after a clear."""
    gc.collect()
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


CACHE = Cache()


def describe():
    return CACHE.describe()


def clear(space=None):
    return float(CACHE.clear(space))


def set_budget(budget):
    return CACHE.set_budget(budget)


def rss_bytes():
    """Resident memory of this process (the R session when run under R)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return float(int(line.split()[1]) * 1024)
    except OSError:
        pass
    return float("nan")
