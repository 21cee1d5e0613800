"""tidyvision's Python engine: images as data with torch.

Importable without R. Submodules are imported on first use so that
``import tidyvision`` stays cheap (torch is only imported by the verbs that
need it).
"""
import importlib

__version__ = "0.1.0"

_SUBMODULES = {
    "cache", "config", "errors", "images", "prepare", "fine_tune", "backbones",
    "detect", "detect_train", "faces", "tags", "transforms", "classifier", "bridge",
    "agreement", "label_issues", "suggest_labels", "corpus", "embeddings", "estimates", "explain",
    "learning_curve", "speed", "testing", "corpus_io",
}


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
