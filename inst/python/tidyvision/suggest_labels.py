"""Active learning: which unlabelled images to label next.

Uncertainty sampling (Settles 2009) on predicted probabilities: the smallest
margin between the two likeliest classes, or the highest entropy; ``random``
is the baseline. With ``diversity``, the picks are spread out in embedding
space (greedy k-center among the most uncertain), so one batch does not
spend its labels on near copies of one confusing picture.
"""
import numpy as np

from . import embeddings

STRATEGIES = ("margin", "entropy", "random")
# With diversity, the k-center picks among this many times n of the most uncertain.
DIVERSITY_POOL = 5


def from_labels(train_paths, train_y, n_classes, pool_paths, n, strategy="margin", diversity=False,
                seed=1, progress=None, **model):
    """Fit a linear head on the embeddings of the labelled images and rank
    the pool by its uncertainty."""
    res = embeddings.embed(list(train_paths) + list(pool_paths), progress=progress, **model)
    x, n_train = res["embedding"], len(train_paths)
    y = np.asarray(train_y, np.int64)
    ok = np.isfinite(x[:n_train]).all(1)
    pool_x = x[n_train:]
    readable = np.isfinite(pool_x).all(1)
    prob = np.full((len(pool_paths), int(n_classes)), np.nan)
    prob[readable] = embeddings.fit_predict(x[:n_train][ok], y[ok], pool_x[readable], n_classes, seed)
    out = rank(prob, n, strategy, seed, pool_x if diversity else None)
    out.update(prob=prob, problem=res["problem"][n_train:])
    return out


def from_probs(prob, n, strategy="margin", diversity=False, seed=1, pool_paths=None, progress=None,
               **model):
    """Rank the pool by the uncertainty of a classifier's probabilities
    (rows of ``prob``); diversity embeds the pool with ``model``."""
    prob = np.array(prob, float).reshape(len(prob), -1)
    x = embeddings.embed(pool_paths, progress=progress, **model)["embedding"] if diversity else None
    return rank(prob, n, strategy, seed, x)


def uncertainty(prob, strategy, seed=1):
    """Higher is more worth labelling: 1 - margin, normalised entropy, or a
    random draw. NaN rows (unreadable images) stay NaN."""
    if strategy == "random":
        score = np.random.default_rng(int(seed)).random(len(prob))
        return np.where(np.isfinite(prob).all(1), score, np.nan)
    if strategy == "margin":
        top = np.sort(prob, axis=1)
        return 1 - (top[:, -1] - top[:, -2])
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.nansum(np.where(prob > 0, prob * np.log(prob), 0.0), axis=1)
    ent = ent / np.log(prob.shape[1])
    return np.where(np.isfinite(prob).all(1), ent, np.nan)


def rank(prob, n, strategy="margin", seed=1, x=None):
    """``score`` for every pool image and ``order``: the indices (0-based)
    of the ``n`` to label next, first first."""
    score = uncertainty(np.asarray(prob, float), strategy, seed)
    valid = np.flatnonzero(np.isfinite(score))
    # stable: ties keep the pool's order
    by_score = valid[np.argsort(-score[valid], kind="stable")]
    n = min(int(n), len(by_score))
    if x is None or n == 0:
        return {"score": score, "order": by_score[:n]}
    return {"score": score, "order": k_center(np.asarray(x, float), by_score[:DIVERSITY_POOL * n], n)}


def k_center(x, candidates, n):
    """Greedy k-center: start from the first (most uncertain) candidate, then
    repeatedly take the candidate farthest (cosine distance) from those taken."""
    v = x[candidates]
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    chosen = [0]
    dist = 1 - v @ v[0]
    dist[0] = -np.inf
    for _ in range(1, n):
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, 1 - v @ v[nxt])
        dist[chosen] = -np.inf  # near copies of a pick are at 0: never picked twice
    return candidates[chosen]
