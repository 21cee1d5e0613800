import numpy as np

from tidyvision import cache


def test_a_space_keeps_its_newest_entries_and_hits_are_not_recomputed():
    c = cache.Cache()
    calls = []

    def make(n):
        calls.append(n)
        return np.zeros(n, dtype=np.uint8)

    a = c.get("decoded", "a", lambda: make(10))
    assert c.get("decoded", "a", lambda: make(99)) is a
    c.get("decoded", "b", lambda: make(20))
    c.get("features", "x", lambda: make(5), keep=2)
    c.get("features", "y", lambda: make(6), keep=2)
    assert calls == [10, 20, 5, 6]
    info = c.describe()
    assert info["space"] == ["decoded", "features"]
    assert info["entries"] == [1, 2] and info["bytes"] == [20.0, 11.0]


def test_the_budget_drops_the_least_recently_used_first():
    c = cache.Cache(budget=100)
    c.get("a", 1, lambda: np.zeros(40, np.uint8))
    c.get("b", 1, lambda: np.zeros(40, np.uint8))
    c.get("a", 1, lambda: None)  # a hit: "a" is now the most recent
    c.get("c", 1, lambda: np.zeros(40, np.uint8))
    assert c.describe()["space"] == ["a", "c"]
    # One entry over the budget on its own is kept: it is about to be used.
    c.get("d", 1, lambda: np.zeros(500, np.uint8))
    assert c.describe()["space"] == ["d"]


def test_clear_frees_one_space_or_all_and_counts_bytes():
    c = cache.Cache()
    c.get("a", 1, lambda: {"x": np.zeros(8, np.float64), "y": [np.zeros(3, np.uint8)]})
    c.get("b", 1, lambda: "no arrays")
    assert c.clear("a") == 67
    assert c.describe()["space"] == ["b"]
    assert c.clear() == 0 and c.describe()["space"] == []


def test_sizes_of_tensors_and_modules():
    import torch
    t = torch.zeros(10, 10)
    assert cache.nbytes(t) == 400
    m = torch.nn.Linear(10, 2)
    assert cache.nbytes(m) == (20 + 2) * 4
    assert cache.nbytes((t, t)) == 400  # the same tensor counts once
