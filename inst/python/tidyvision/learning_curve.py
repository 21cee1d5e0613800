"""Learning curves: validation predictions of linear heads fitted on
random, class-complete subsets of the training images' embeddings. The
embeddings are computed once (and cached), so each point takes seconds."""
import numpy as np

from .embeddings import embed, fit_predict


def curve(paths, labels, n_train, sizes, reps, n_classes, seed=1, backbone="efficientnet_lite0",
          resize="rescale_crop", image_size=224, batch_size=64, progress=None):
    """``paths``: the training images then the validation images (the first
    ``n_train``); ``labels``: 0-based classes. Returns, for every size and
    rep, the predicted class (0-based) of each validation image."""
    emb = embed(paths, backbone=backbone, resize=resize, image_size=int(image_size),
                batch_size=int(batch_size), progress=progress)["embedding"]
    y = np.asarray(labels, np.int64)
    ok = ~np.isnan(emb).any(axis=1)
    train = np.flatnonzero(ok[:int(n_train)])
    val = int(n_train) + np.flatnonzero(ok[int(n_train):])
    out = {"size": [], "rep": [], "pred": [], "val": (val - int(n_train)).tolist()}
    for size in sizes:
        for rep in range(int(reps)):
            rng = np.random.default_rng([int(seed), int(size), rep])
            sub = _subset(train, y, int(size), rng)
            prob = fit_predict(emb[sub], y[sub], emb[val], n_classes, seed=int(seed) + rep)
            out["size"].append(len(sub))
            out["rep"].append(rep + 1)
            out["pred"].append(prob.argmax(axis=1).tolist())
    return out


def _subset(train, y, size, rng):
    """``size`` random training rows with at least one image of every class."""
    order = rng.permutation(train)
    firsts = [order[y[order] == c][0] for c in np.unique(y[train])]
    rest = [i for i in order if i not in set(firsts)]
    return np.asarray(firsts + rest[:max(0, size - len(firsts))], np.int64)
