"""Label issues by confident learning (Northcutt, Jiang & Chuang, JAIR 2021)
through cleanlab: out-of-fold probabilities from linear heads on cached,
unit-length embeddings (calibrated enough to rank: see embeddings._head),
then cleanlab's defaults (``prune_by_noise_rate`` for the issues,
self-confidence for the label quality)."""
import numpy as np

from . import embeddings


def find_label_issues(paths, labels, n_classes, folds=5, seed=1, progress=None, **model):
    """One entry per path: out-of-fold ``prob`` (n, K), ``label_quality``,
    ``is_issue`` and ``suggested`` (0-based class), None/NaN where the image
    can't be read or has no label (-1)."""
    from cleanlab.filter import find_label_issues as cl_issues
    from cleanlab.rank import get_label_quality_scores
    res = embeddings.embed(paths, progress=progress, **model)
    x, y = res["embedding"], np.asarray(labels, np.int64)
    n, k = len(y), int(n_classes)
    ok = np.isfinite(x).all(1) & (y >= 0)
    prob = np.full((n, k), np.nan)
    quality, issue, suggested = [None] * n, [None] * n, [None] * n
    if ok.any():
        p = embeddings.out_of_fold(x[ok], y[ok], k, folds=folds, seed=seed)
        prob[ok] = p
        # n_jobs=1: no worker processes forked from inside R
        flags = cl_issues(y[ok], p, n_jobs=1)
        scores = get_label_quality_scores(y[ok], p)
        for j, i in enumerate(np.flatnonzero(ok)):
            quality[i], issue[i], suggested[i] = float(scores[j]), bool(flags[j]), int(p[j].argmax())
    return {"prob": prob, "label_quality": quality, "is_issue": issue, "suggested": suggested,
            "problem": res["problem"]}
