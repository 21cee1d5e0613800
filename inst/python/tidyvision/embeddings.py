"""Image embeddings: a backbone's pooled features, one row per image.

Each image's vector is computed once per (file content, model, preprocessing)
and kept in the engine's cache, so similar images, semantic duplicates, label
issues, learning curves and active learning never decode an image twice.
Also cosine similarity over those vectors, block by block (nearest
neighbours, and every pair above a threshold for semantic duplicates), and
the small linear heads fitted on them (head-only training in seconds):
out-of-fold probabilities and fit-then-predict.
"""
import numpy as np

from . import config, images, speed, transforms
from .backbones import build_backbone, split_head
from .cache import CACHE
from .classifier import eval_loader, load_model
from .errors import check

# Rows of one side compared at once: a 2048 x 20,000 float32 block of
# similarities is 160 MB, so 20,000 images never hold all pairs in memory.
BLOCK = 2048


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
    paths = [str(p) for p in paths]
    store = CACHE.get("embeddings", model_key(backbone, weights_path, resize, image_size),
                      EmbeddingStore, keep=2)
    digests = images.parallel_map(_digest, paths)
    todo = [i for i, d in enumerate(digests) if d is None or d not in store.vectors]
    problems = [None if d is not None else "The file can't be read." for d in digests]
    loader = eval_loader(resize, int(image_size))
    min_side = transforms.decode_min_side(resize, int(image_size))
    body = _body(backbone, weights_path, n_classes, device) if todo else None
    if body is not None:
        precision = speed.inference(precision, device, body, backbone, image_size)

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


def vectors(paths, embedding=None, progress=None, **model):
    """(float32 (n, d) embeddings, problems) of ``paths``: ``embedding`` as
    given (NaN rows are missing), or embedded with ``model`` (embed()'s
    arguments), from the cache where it can."""
    if embedding is None:
        res = embed(paths, progress=progress, **model)
        return res["embedding"], res["problem"]
    x = np.asarray(embedding, np.float32)
    if x.ndim != 2:  # rows of a list; zero rows can't infer a width
        x = x.reshape(len(x), -1) if x.size else np.zeros((len(x), 0), np.float32)
    check(len(x) == len(paths), "bad_argument",
          f"The embedding matrix has {len(x)} rows for {len(paths)} images.")
    return x, [None if np.isfinite(row).all() else "Its embedding is missing." for row in x]


def similar(query, pool, k=5, exclude=None, query_embedding=None, pool_embedding=None,
            progress=None, **model):
    """nearest() of the images ``query`` among ``pool``, embedding each side
    unless its embeddings are given; also each side's problems."""
    q, q_problems = vectors(query, query_embedding, progress, **model)
    p, p_problems = vectors(pool, pool_embedding, progress, **model)
    if 0 in q.shape or 0 in p.shape:  # no image, or none readable, on one side: no neighbours
        out = {key: np.empty(0) for key in ("query", "neighbour", "rank", "distance")}
    else:
        check(q.shape[1] == p.shape[1], "bad_argument",
              f"The query embeddings have {q.shape[1]} dimensions and the pool's {p.shape[1]}: "
              "embed both with the same backbone.")
        out = nearest(q, p, k, exclude)
    out.update(query_problem=q_problems, pool_problem=p_problems)
    return out


def unit_rows(x):
    """Float32 rows scaled to length 1; NaN rows (unreadable images) and
    all-zero rows become NaN, which no comparison matches."""
    x = np.array(x, dtype=np.float32, copy=True).reshape(len(x), -1)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    norm[~(norm > 0)] = np.nan
    return x / norm


def nearest(query, pool, k=5, exclude=None, block=BLOCK):
    """The ``k`` pool rows with the highest cosine similarity to each query row.

    ``exclude`` gives, per query row, a pool row (0-based) it may not match
    (itself), or -1. Query rows with NaN get no neighbours; NaN pool rows are
    never neighbours. Returns columns ``query`` and ``neighbour`` (1-based),
    ``rank`` (1 = nearest; ties by pool order) and ``distance`` (1 - cosine).
    """
    q, p = unit_rows(query), unit_rows(pool)
    ok = np.flatnonzero(np.isfinite(p).all(1))
    p = p[ok]
    exclude = np.full(len(q), -1) if exclude is None else np.asarray(exclude, np.int64)
    position = np.full(len(pool) + 1, -1)
    position[ok] = np.arange(len(ok))
    skip = position[exclude]  # the excluded row among the usable pool rows, or -1
    take = min(int(k) + 1, len(ok))
    cols = {"query": [], "neighbour": [], "rank": [], "distance": []}
    for a in range(0, len(q), block):
        sim = q[a:a + block] @ p.T
        rows = np.flatnonzero(skip[a:a + block] >= 0)
        sim[rows, skip[a:a + block][rows]] = -np.inf
        _top_k(sim, a, take, int(k), ok, cols)
    return {key: np.concatenate(v) if v else np.empty(0) for key, v in cols.items()}


def _top_k(sim, offset, take, k, ok, cols):
    """Append the ``k`` best finite similarities of each row of ``sim``."""
    if take == 0:
        return
    top = np.argpartition(-sim, take - 1, axis=1)[:, :take]
    best = np.take_along_axis(sim, top, axis=1)
    order = np.lexsort((top, -best), axis=1)  # by similarity, then pool order
    top, best = np.take_along_axis(top, order, 1)[:, :k], np.take_along_axis(best, order, 1)[:, :k]
    keep = np.isfinite(best)
    row, rank = np.nonzero(keep)
    cols["query"].append(row + offset + 1)
    cols["neighbour"].append(ok[top[keep]] + 1)
    cols["rank"].append(rank + 1)
    cols["distance"].append(np.clip(1 - best[keep].astype(np.float64), 0, 2))


def close_pairs(x, threshold, block=BLOCK, progress=None, unit=False):
    """Index pairs (i < j) of rows whose cosine similarity is >= threshold,
    comparing ``block`` rows at a time against every later row. ``unit``:
    the rows are unit_rows() already (no second copy of a large matrix)."""
    u = x if unit else unit_rows(x)
    n, rows, cols = len(u), [], []
    for a in range(0, n, block):
        sim = u[a:a + block] @ u[a:].T
        i, j = np.nonzero(sim >= threshold)
        keep = j > i
        rows.append(i[keep] + a)
        cols.append(j[keep] + a)
        if progress is not None:
            progress(min(a + block, n), n, "Comparing images")
    if not rows:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(rows), np.concatenate(cols)


def _head(seed, C=1.0, rows="standard"):
    """Logistic regression on standardised embeddings (``rows = "standard"``:
    the most accurate head, for suggestions and learning curves), or on
    unit-length rows (``"unit"``: the better-calibrated one, for ranking
    labels by their out-of-fold probability). Standardising each of the
    1,280 features blows the near-constant ones up into noise, which makes
    the probabilities overconfident: they ranked flipped labels worse than
    cleanlab's reference (plain logistic regression), badly so on harder
    images, where unit rows ranked them at least as well (bench/label_issues.py)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer, StandardScaler
    scale = Normalizer() if rows == "unit" else StandardScaler()
    return make_pipeline(scale, LogisticRegression(C=C, max_iter=2000, random_state=seed))


def fit_predict(train_x, train_y, test_x, n_classes, seed=1, C=1.0, rows="standard"):
    """Probabilities (n_test, n_classes) of a linear head fitted on embeddings.
    Classes absent from the training rows get probability 0."""
    train_x, test_x = np.asarray(train_x, np.float32), np.asarray(test_x, np.float32)
    train_y = np.asarray(train_y, np.int64)
    out = np.zeros((len(test_x), int(n_classes)), np.float64)
    present = np.unique(train_y)
    if len(present) == 1:
        out[:, present[0]] = 1.0
        return out
    head = _head(int(seed), C, rows).fit(train_x, train_y)
    out[:, head.classes_] = head.predict_proba(test_x)
    return out


def out_of_fold(x, y, n_classes, folds=5, seed=1, C=1.0, rows="unit"):
    """Out-of-fold probabilities: each row predicted by a head that never saw
    it (stratified folds), as confident learning needs."""
    from sklearn.model_selection import StratifiedKFold
    x, y = np.asarray(x, np.float32), np.asarray(y, np.int64)
    out = np.zeros((len(y), int(n_classes)), np.float64)
    splitter = StratifiedKFold(n_splits=int(folds), shuffle=True, random_state=int(seed))
    for train, test in splitter.split(x, y):
        out[test] = fit_predict(x[train], y[train], x[test], n_classes, seed, C, rows)
    return out
