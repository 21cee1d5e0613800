"""Image embeddings: a backbone's pooled features, one row per image.

Each image's vector is computed once per (file content, model, preprocessing)
and kept in the engine's cache, so similar images, semantic duplicates, label
issues, learning curves and active learning never decode an image twice.
Also the small linear heads fitted on those vectors (head-only training in
seconds): out-of-fold probabilities and fit-then-predict.
"""
import numpy as np

from . import config, images, transforms
from .backbones import build_backbone, split_head
from .cache import CACHE
from .classifier import eval_loader, load_model


class EmbeddingStore:
    """Vectors by file digest for one model; its size is what the cache counts."""

    def __init__(self):
        self.vectors = {}

    @property
    def cache_nbytes(self):
        return int(sum(v.nbytes for v in self.vectors.values()))


def model_key(backbone, weights_path=None, resize="rescale_crop", image_size=224):
    """What an embedding depends on besides the image."""
    digest = images.file_sha256(weights_path) if weights_path else "pretrained"
    return (str(backbone), digest, str(resize), int(image_size))


def _body(backbone, weights_path, n_classes, device):
    """The frozen body (the classifier's own when ``weights_path`` is given)."""
    import torch
    if weights_path:
        return load_model(weights_path, backbone, n_classes, device).body

    def build():
        body, _, _ = split_head(build_backbone(backbone, pretrained=True))
        return body.eval().to(device=device, memory_format=torch.channels_last)
    return CACHE.get("classifier", ("body", str(backbone), device), build)


def embed(paths, backbone="efficientnet_lite0", weights_path=None, n_classes=None,
          resize="rescale_crop", image_size=224, device="auto", precision="auto",
          batch_size=64, progress=None):
    """Float32 (n, d) embeddings, one row per path in order; NaN rows (and a
    problem) where an image can't be read. Cached vectors are not recomputed."""
    import torch
    device = config.resolve_device(device)
    precision = config.resolve_precision(precision, device)
    paths = [str(p) for p in paths]
    store = CACHE.get("embeddings", model_key(backbone, weights_path, resize, image_size),
                      EmbeddingStore, keep=2)
    digests = images.parallel_map(_digest, paths)
    todo = [i for i, d in enumerate(digests) if d is None or d not in store.vectors]
    problems = [None if d is not None else "The file can't be read." for d in digests]
    loader = eval_loader(resize, int(image_size))
    min_side = transforms.decode_min_side(resize, int(image_size))
    body = _body(backbone, weights_path, n_classes, device) if todo else None

    def decode(i):
        if digests[i] is None:
            return None, problems[i]
        im, problem = images.try_load_rgb(paths[i], min_side)
        return (loader(im), None) if im is not None else (None, problem)

    done = len(paths) - len(todo)
    for _, chunk, decoded in images.prefetched(todo, batch_size, decode):
        ok = [j for j, (t, _) in enumerate(decoded) if t is not None]
        for j, (_, problem) in enumerate(decoded):
            problems[chunk[j]] = problem
        if ok:
            x = torch.stack([decoded[j][0] for j in ok])
            for j, v in zip(ok, _forward(body, x, device, precision)):
                store.vectors[digests[chunk[j]]] = v
        done += len(chunk)
        if progress is not None:
            progress(done, len(paths))
    return {"embedding": _gather(store, digests, problems), "problem": problems}


def _digest(path):
    try:
        return images.file_sha256(path)
    except OSError:
        return None


def _forward(body, x_u8, device, precision, batch_size=64):
    import torch
    out, batch_size = [], config.forward_batch(device, batch_size)
    with torch.inference_mode(), config.autocast(device, precision):
        for i in range(0, len(x_u8), batch_size):
            out.append(body(transforms.normalize(x_u8[i:i + batch_size], device)).float().cpu().numpy())
    return np.concatenate(out)


def _gather(store, digests, problems):
    d = next((len(v) for v in store.vectors.values()), 0)
    out = np.full((len(digests), d), np.nan, dtype=np.float32)
    for i, key in enumerate(digests):
        if problems[i] is None and key in store.vectors:
            out[i] = store.vectors[key]
    return out


def _head(seed, C=1.0):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000, random_state=seed))


def fit_predict(train_x, train_y, test_x, n_classes, seed=1, C=1.0):
    """Probabilities (n_test, n_classes) of a linear head fitted on embeddings.
    Classes absent from the training rows get probability 0."""
    train_x, test_x = np.asarray(train_x, np.float32), np.asarray(test_x, np.float32)
    train_y = np.asarray(train_y, np.int64)
    out = np.zeros((len(test_x), int(n_classes)), np.float64)
    present = np.unique(train_y)
    if len(present) == 1:
        out[:, present[0]] = 1.0
        return out
    head = _head(int(seed), C).fit(train_x, train_y)
    out[:, head.classes_] = head.predict_proba(test_x)
    return out


def out_of_fold(x, y, n_classes, folds=5, seed=1, C=1.0):
    """Out-of-fold probabilities: each row predicted by a head that never saw
    it (stratified folds), as confident learning needs."""
    from sklearn.model_selection import StratifiedKFold
    x, y = np.asarray(x, np.float32), np.asarray(y, np.int64)
    out = np.zeros((len(y), int(n_classes)), np.float64)
    splitter = StratifiedKFold(n_splits=int(folds), shuffle=True, random_state=int(seed))
    for train, test in splitter.split(x, y):
        out[test] = fit_predict(x[train], y[train], x[test], n_classes, seed, C)
    return out
