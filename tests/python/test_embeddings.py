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


def _brute_nearest(q, p, k, exclude):
    qu = q / np.linalg.norm(q, axis=1, keepdims=True)
    pu = p / np.linalg.norm(p, axis=1, keepdims=True)
    sim = qu @ pu.T
    out = []
    for i in range(len(q)):
        order = [j for j in np.argsort(-sim[i], kind="stable") if j != exclude[i]][:k]
        out += [(i + 1, j + 1, r + 1) for r, j in enumerate(order)]
    return out, sim


def test_nearest_in_blocks_matches_brute_force():
    rng = np.random.default_rng(3)
    p = rng.normal(size=(50, 16)).astype(np.float32)
    q = p[:7] + rng.normal(scale=0.01, size=(7, 16)).astype(np.float32)
    exclude = np.array([0, -1, 2, -1, -1, -1, 6])
    got = embeddings.nearest(q, p, k=4, exclude=exclude, block=3)
    want, sim = _brute_nearest(q, p, 4, exclude)
    assert list(zip(got["query"], got["neighbour"], got["rank"])) == want
    np.testing.assert_allclose(got["distance"], [1 - sim[i - 1, j - 1] for i, j, _ in want], atol=1e-5)
    # an excluded query (itself in the pool) never matches itself; the others do first
    assert got["neighbour"][got["query"] == 2][0] == 2


def test_nearest_skips_missing_rows_and_small_pools():
    p = np.eye(3, dtype=np.float32)
    p[1] = np.nan
    q = np.array([[1, 0.1, 0], [np.nan, 0, 0]], np.float32)
    got = embeddings.nearest(q, p, k=5)
    assert got["query"].tolist() == [1, 1] and got["neighbour"].tolist() == [1, 3]
    assert got["rank"].tolist() == [1, 2]


def test_close_pairs_in_blocks_find_every_pair_above_threshold():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 8)).astype(np.float32)
    x[10] = x[3] * 2  # same direction: cosine 1
    x[25] = x[3] + 0.05
    x[30] = np.nan
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = u @ u.T
    want = {(i, j) for i in range(40) for j in range(i + 1, 40) if sim[i, j] >= 0.6}
    rows, cols = embeddings.close_pairs(x, 0.6, block=7)
    assert set(zip(rows.tolist(), cols.tolist())) == want
    assert (3, 10) in want and (3, 25) in want and not any(30 in pair for pair in want)


def test_embedding_duplicates_group_by_components():
    from tidyvision import prepare
    x = np.array([[1, 0, 0], [0, 1, 0], [0.95, 0.1, 0], [0.9, 0.3, 0], [np.nan] * 3], np.float32)
    out = prepare.find_duplicates(["a", "b", "c", "d", "e"], method="embedding", threshold=0.97,
                                  embedding=x)
    # a-c and c-d are close, a-d is not: one chain, one group
    assert out["group"] == [1, 2, 1, 1, None]
    assert out["is_first"] == [True, True, False, False, None]
    assert out["distance"][0] == 0 and 0.02 < out["distance"][3] < 0.1
    assert out["problem"][4]


def test_bridge_rebuilds_float32_arrays_from_r():
    from tidyvision import bridge
    m = np.arange(6, dtype="<f4").reshape(2, 3)
    x = bridge.from_r({"__ndarray__": "float32", "dim": [2, 3], "data": bytearray(m.tobytes())})
    np.testing.assert_array_equal(x, m)
    assert bridge.from_r({"a": 1}) == {"a": 1}


def test_similar_with_nothing_readable_on_one_side_has_no_neighbours(tmp_path):
    bad = tmp_path / "empty.jpg"
    bad.write_bytes(b"")
    pool = np.eye(3, 4, dtype=np.float32)
    out = embeddings.similar([str(bad)], ["a", "b", "c"], k=2, query_embedding=np.full((1, 4), np.nan),
                             pool_embedding=pool)
    assert len(out["query"]) == 0
    out = embeddings.similar(["a"], [], k=2, query_embedding=pool[:1], pool_embedding=np.zeros((0, 0)))
    assert len(out["neighbour"]) == 0


def test_tied_neighbours_come_in_pool_order():
    base = np.eye(4, 8, dtype=np.float32)
    pool = np.concatenate([base[[1]], base[[0]], base[[0]], base[[2]], base[[0]]])  # rows 1, 2, 4 tie for row 0
    out = embeddings.nearest(base[[0]], pool, k=3)
    assert out["neighbour"].tolist() == [2, 3, 5]  # 1-based, in pool order
    assert out["distance"].tolist() == [0, 0, 0]
    out = embeddings.nearest(base[[0]], pool, k=3, block=1)
    assert out["neighbour"].tolist() == [2, 3, 5]
