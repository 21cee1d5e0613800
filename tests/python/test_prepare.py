import os
from pathlib import Path

import numpy as np
import pytest

from tidyvision import prepare
import fixtures
from tidyvision.errors import TidyvisionError

EXTDATA = Path(__file__).resolve().parents[2] / "inst" / "extdata" / "images"
PHOTOS = sorted(str(p) for p in EXTDATA.rglob("*.jpg"))
KINDS = ["jpeg40", "half", "png", "crop3"]


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    """Every shipped photo with its four near-copies: {kind: [path per photo]}."""
    root = tmp_path_factory.mktemp("copies")
    out = {}
    for kind in KINDS:
        ext = "png" if kind == "png" else "jpg"
        out[kind] = [fixtures.write_copy(p, root / f"{k:03d}_{kind}.{ext}", kind)
                     for k, p in enumerate(PHOTOS)]
    return out


def hashes_of(paths):
    hashes, problems = prepare.hash_files(paths, "phash")
    assert not any(problems)
    return np.array(hashes, dtype=np.uint64)


def test_threshold_separates_copies_from_different_photos(copies):
    # How DEFAULT_MAX_DISTANCE was chosen: near copies of the shipped photos
    # against every pair of different shipped photos.
    originals = hashes_of(PHOTOS)
    dist = prepare.hamming(originals[:, None], originals[None])
    different = dist[np.triu_indices(len(PHOTOS), 1)]
    near = np.concatenate([prepare.hamming(originals, hashes_of(copies[k])) for k in KINDS])
    assert len(PHOTOS) >= 80
    assert near.max() <= prepare.DEFAULT_MAX_DISTANCE - 2
    assert different.min() >= prepare.DEFAULT_MAX_DISTANCE + 4
    assert np.median(different) >= 28


def test_near_copies_group_with_their_original(copies):
    paths = PHOTOS + [p for k in KINDS for p in copies[k]]
    out = prepare.find_duplicates(paths)
    group = np.array(out["group"])
    n = len(PHOTOS)
    truth = np.tile(np.arange(n), len(KINDS) + 1)
    # Every pair the truth puts together is together (recall) and vice versa (precision).
    same_found = group[:, None] == group[None]
    same_truth = truth[:, None] == truth[None]
    assert (same_found == same_truth).all()
    assert group[:n].tolist() == list(range(1, n + 1))
    assert out["is_first"][:n] == [True] * n
    assert not any(out["is_first"][n:])
    assert max(out["distance"]) <= prepare.DEFAULT_MAX_DISTANCE
    assert out["distance"][:n] == [0] * n


def test_exact_finds_identical_bytes_only(tmp_path, copies):
    a, b = PHOTOS[0], PHOTOS[1]
    same = tmp_path / "same.jpg"
    same.write_bytes(Path(a).read_bytes())
    out = prepare.find_duplicates([b, a, str(same), copies["png"][0]], method="exact")
    assert out["group"] == [1, 2, 2, 3]
    assert out["is_first"] == [True, True, False, True]
    assert out["distance"] == [0, 0, 0, 0]


def test_unreadable_and_skipped_images_have_no_group(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    missing = str(tmp_path / "missing.jpg")
    paths = [PHOTOS[0], str(bad), PHOTOS[0], missing, PHOTOS[1]]
    out = prepare.find_duplicates(paths, skip=[False, False, False, False, True])
    assert out["group"] == [1, None, 1, None, None]
    assert out["is_first"] == [True, None, False, None, None]
    assert out["distance"] == [0, None, 0, None, None]
    assert "not an image Pillow can read" in out["problem"][1]
    assert out["problem"][3] is not None
    assert out["problem"][4] is None
    exact = prepare.find_duplicates(paths, method="exact")
    assert exact["group"] == [1, 2, 1, None, 3]
    assert exact["problem"][3] == "file not found"  # the words image_files() uses


def test_close_pairs_matches_brute_force_across_blocks(monkeypatch):
    rng = np.random.default_rng(1)
    base = rng.integers(0, 2**63, (300, 3), dtype=np.uint64)
    # Plant near pairs by flipping a few bits of earlier rows.
    for i in range(100, 300, 3):
        flips = rng.integers(0, 64, 3).astype(np.uint64)
        base[i] = base[i - 100] ^ np.bitwise_or.reduce(np.uint64(1) << flips)
    monkeypatch.setattr(prepare, "PAIRS_PER_BLOCK", 300 * 20)  # blocks of 20 rows
    rows, cols = prepare.close_pairs(base, 6)
    full = prepare.hamming(base[:, None], base[None])
    want = {(i, j) for i, j in zip(*np.nonzero(full <= 6)) if i < j}
    assert set(zip(rows.tolist(), cols.tolist())) == want
    assert len(want) >= 60


def test_groups_are_transitive_and_numbered_by_first_appearance():
    h = np.zeros((5, 1), np.uint64)
    h[:, 0] = [0xFF00, 0x0, 0xF0F0F0F0F0F0F0F0, 0x3, 0xF]
    group, is_first, dist = prepare.group_hashes(h, "phash", 2)
    # 0x0 ~ 0x3 ~ 0xF in a chain, although 0x0 and 0xF are 4 bits apart.
    assert group.tolist() == [0, 1, 2, 1, 1]
    assert is_first.tolist() == [True, True, True, False, False]
    assert dist.tolist() == [0, 0, 0, 2, 4]
    assert prepare.renumber(np.array([7, 3, 7, 1])).tolist() == [0, 1, 0, 2]


def test_hamming_takes_the_best_crop_both_ways():
    a = np.array([[0x0, 0xFFFF, 0x1]], np.uint64)
    b = np.array([[0xFFFF, 0xF, 0xF]], np.uint64)
    assert prepare.hamming(a, b).tolist() == [0]  # a's crop vs b's full frame
    assert prepare.hamming(b, a).tolist() == [0]


def test_empty_input_and_bad_arguments():
    out = prepare.find_duplicates([])
    assert out == {"group": [], "is_first": [], "distance": [], "problem": []}
    with pytest.raises(TidyvisionError) as e:
        prepare.find_duplicates(PHOTOS[:1], method="md5")
    assert e.value.kind == "bad_argument"
    with pytest.raises(TidyvisionError):
        prepare.find_duplicates(PHOTOS[:1], max_distance=65)


def test_progress_is_reported_per_batch(monkeypatch):
    monkeypatch.setattr(prepare, "CHUNK", 4)
    calls = []
    prepare.hash_files(PHOTOS[:10], "exact", progress=lambda done, total: calls.append((done, total)))
    assert calls == [(4, 10), (8, 10), (10, 10)]


def test_tiny_images_hash(tmp_path):
    path = os.fspath(tmp_path / "one.png")
    fixtures.photo_like(1, (1, 1)).save(path)
    out = prepare.find_duplicates([path, path])
    assert out["problem"] == [None, None]
    assert out["group"][0] == out["group"][1] and out["distance"] == [0, 0]
