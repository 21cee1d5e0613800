"""The embedding core: vectors per image, cached, NaN for unreadable files,
and linear heads on them (fit-then-predict, out-of-fold)."""
import shutil
from pathlib import Path

import numpy as np
import pytest

from tidyvision import embeddings
from tidyvision.cache import CACHE

EXTDATA = Path(__file__).resolve().parents[2] / "inst" / "extdata" / "images"


def _photos(n):
    return sorted(str(p) for p in EXTDATA.rglob("*.jpg"))[:n]


def test_embed_rows_in_order_and_cached(tmp_path):
    CACHE.clear("embeddings")
    paths = _photos(3)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    ticks = []
    res = embeddings.embed(paths + [str(bad)], image_size=64, progress=lambda d, t: ticks.append(d))
    emb = res["embedding"]
    assert emb.shape == (4, 1280)
    assert np.isfinite(emb[:3]).all() and np.isnan(emb[3]).all()
    assert res["problem"][:3] == [None] * 3 and res["problem"][3]
    assert ticks[-1] == 4
    # a copy under another name is the same content: one vector, no recompute
    copy = tmp_path / "copy.jpg"
    shutil.copy(paths[1], copy)
    ticks.clear()
    again = embeddings.embed([str(copy), paths[0]], image_size=64, progress=lambda d, t: ticks.append(d))
    np.testing.assert_array_equal(again["embedding"], emb[[1, 0]])
    assert ticks == []  # nothing to compute: everything came from the cache
    # other preprocessing is another model key
    other = embeddings.embed(paths[:1], image_size=96)["embedding"]
    assert not np.allclose(other, emb[:1])


def test_missing_file_is_a_problem_not_an_abort(tmp_path):
    res = embeddings.embed([str(tmp_path / "gone.jpg")], image_size=64)
    assert res["problem"][0] and np.isnan(res["embedding"]).all()


def test_heads_learn_separable_classes():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 20)
    x = rng.normal(size=(60, 8)) + np.eye(3, 8)[y] * 4
    oof = embeddings.out_of_fold(x, y, 3, folds=5, seed=1)
    assert oof.shape == (60, 3)
    np.testing.assert_allclose(oof.sum(1), 1, atol=1e-6)
    assert (oof.argmax(1) == y).mean() > 0.9
    np.testing.assert_array_equal(oof, embeddings.out_of_fold(x, y, 3, folds=5, seed=1))
    # a row is never predicted by a head that saw it: a lone outlier is not memorised
    x2, y2 = x.copy(), y.copy()
    x2[0] = x[25]  # looks like class 1, labelled 0
    assert embeddings.out_of_fold(x2, y2, 3, folds=5, seed=1)[0].argmax() == 1
    probs = embeddings.fit_predict(x[y != 2], y[y != 2], x[:5], 3)
    assert probs.shape == (5, 3) and (probs[:, 2] == 0).all()
