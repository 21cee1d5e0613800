"""What crosses to R. reticulate 1.28 can't convert NumPy 2 arrays, so every
engine call from R goes through call(), which turns arrays into bytes plus a
shape that R rebuilds (R/engine.R: from_py()), and rebuilds the float32
arrays R sends the same way (R/engine.R: py_array()). Fast for large arrays too."""
import importlib

import numpy as np


def call(name, *args, **kwargs):
    module, fun = name.rsplit(".", 1)
    f = getattr(importlib.import_module(f"tidyvision.{module}"), fun)
    args = [from_r(a) for a in args]
    kwargs = {k: from_r(v) for k, v in kwargs.items()}
    return to_r(f(*args, **kwargs))


def from_r(x):
    """An R matrix sent by py_array() as a float32 array; anything else as is."""
    if isinstance(x, dict) and x.get("__ndarray__") == "float32":
        return np.frombuffer(x["data"], dtype="<f4").reshape([int(d) for d in x["dim"]])  # no copy
    return x


def to_r(x):
    if isinstance(x, np.ndarray):
        return _array(x)
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, dict):
        return {k: to_r(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_r(v) for v in x]
    return x


def _array(a):
    if a.dtype == np.uint8:
        kind, data = "uint8", a.tobytes()
    elif a.dtype.kind in "iub":
        kind, data = "int", a.astype("<i4").tobytes()
    elif a.dtype.kind == "f":
        kind, data = "double", a.astype("<f8").tobytes()
    else:
        return a.tolist()
    # reticulate 1.28 converts bytearray (not bytes) to an R raw vector.
    return {"__ndarray__": kind, "dim": list(a.shape), "data": bytearray(data)}
