"""Exact and near-duplicate images: the book's step 2, deduplicate.

Each image is decoded once (in threads over every core) and hashed, then
pairs within ``max_distance`` are found by comparing 64-bit hashes block by
block with NumPy's popcount, and joined into groups as connected components.
No Python loop runs over pairs.

A plain 64-bit phash moves by up to 16 bits when a copy loses 3% of each
border, as far as two different photos of pliers on a white background. So
each image also gets the phash of its central 95% and 90%, and the distance
of two images is the smallest of full-vs-full and full-vs-crop (both ways):
near copies cropped by up to 5% a side then stay within 6 bits, while
different photos stay 12 or more apart (tests/python/test_prepare.py,
``test_threshold_separates_copies_from_different_photos``).

``method="embedding"`` finds semantic near-copies instead: images whose
backbone embeddings (embeddings.py, cached) have a cosine similarity of at
least ``threshold``, compared block by block, then joined the same way.
"""
import logging

import numpy as np

from . import images
from .errors import check

log = logging.getLogger(__name__)

METHODS = ("phash", "exact", "embedding")
# phash looks at a 32x32 grey image, so JPEGs are decoded at the smallest
# scale (1/2, 1/4, 1/8) that keeps both sides at least this long.
HASH_MIN_SIDE = 128
# Central crops hashed besides the full frame, as fractions of each side.
CROP_FRACTIONS = (0.95, 0.90)
# The default max_distance: see the module docstring.
DEFAULT_MAX_DISTANCE = 8
# The default threshold of "embedding", measured: see find_duplicates() in R/prepare.R.
DEFAULT_THRESHOLD = 0.85
# Files per parallel batch: progress is reported between batches.
CHUNK = 512
# About this many hash pairs are compared at once (8 bytes each).
PAIRS_PER_BLOCK = 1 << 22


def sha256_file(path):
    """(hex digest, None) or (None, problem)."""
    try:
        return images.file_sha256(path), None
    except OSError as e:
        return None, images.problem_of(path, e)


def _phash64(im):
    import imagehash
    return int(np.packbits(imagehash.phash(im).hash.reshape(-1)).view(">u8")[0])


def _central(im, fraction):
    w, h = im.size
    dx, dy = w * (1 - fraction) / 2, h * (1 - fraction) / 2
    return im.crop((round(dx), round(dy), round(w - dx), round(h - dy)))


def phash_file(path):
    """((full, crop95, crop90) 64-bit perceptual hashes, None) or (None, problem)."""
    im, problem = images.try_load_rgb(path, HASH_MIN_SIDE)
    if im is None:
        return None, problem
    try:
        im = im.convert("L")  # what phash hashes; converting once serves all three
        return (_phash64(im),) + tuple(_phash64(_central(im, f)) for f in CROP_FRACTIONS), None
    except Exception as e:  # a degenerate image (e.g. 1 pixel wide) can fail in resize
        return None, f"{type(e).__name__}: {e}"


def hamming(a, b):
    """Crop-tolerant distance between rows of two (n, k) uint64 hash arrays.

    Shapes broadcast, so ``a[:, None]`` against ``b[None]`` gives all pairs.
    """
    d = np.bitwise_count(a[..., 0] ^ b[..., 0])
    for k in range(1, a.shape[-1]):
        np.minimum(d, np.bitwise_count(a[..., k] ^ b[..., 0]), out=d)
        np.minimum(d, np.bitwise_count(a[..., 0] ^ b[..., k]), out=d)
    return d


def hash_files(paths, method, progress=None, workers=None):
    """Hash every path in parallel batches; (hashes, problems), None where it failed."""
    fn = phash_file if method == "phash" else sha256_file
    results = []
    for start in range(0, len(paths), CHUNK):
        results.extend(images.parallel_map(fn, paths[start:start + CHUNK], workers))
        if progress is not None:
            progress(len(results), len(paths))
    return [h for h, _ in results], [p for _, p in results]


def close_pairs(hashes, max_distance):
    """Index pairs (i < j) whose Hamming distance is <= max_distance.

    ``hashes`` is an (n, k) uint64 array; rows are compared in blocks against
    every later row, so memory stays near PAIRS_PER_BLOCK * 10 bytes.
    """
    n = len(hashes)
    block = max(16, PAIRS_PER_BLOCK // max(n, 1))
    rows, cols = [], []
    for a in range(0, n, block):
        b = min(a + block, n)
        dist = hamming(hashes[a:b, None], hashes[None, a:])
        i, j = np.nonzero(dist <= max_distance)
        keep = j > i
        rows.append(i[keep] + a)
        cols.append(j[keep] + a)
    if not rows:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(rows), np.concatenate(cols)


def components(n, rows, cols):
    """Connected components of the pair graph, numbered 0.. by first member."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    graph = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    return renumber(comp)


def renumber(labels):
    """Relabel so that groups are numbered 0.. in order of their first member."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse]


def firsts(group):
    """Each row's group's first row, and whether it is that row."""
    n = len(group)
    first = np.full(group.max() + 1, n, np.int64)
    np.minimum.at(first, group, np.arange(n))
    return first[group], first[group] == np.arange(n)


def group_hashes(hashes, method, max_distance):
    """(group, is_first, distance) arrays for hashes that all exist."""
    n = len(hashes)
    if n == 0:
        empty = np.empty(0, np.int64)
        return empty, np.empty(0, bool), empty
    if method == "exact":
        group = renumber(np.asarray(hashes))
        return (group,) + firsts(group)[1:] + (np.zeros(n, np.int64),)
    h = np.asarray(hashes, dtype=np.uint64).reshape(n, -1)
    group = components(n, *close_pairs(h, max_distance))
    first, is_first = firsts(group)
    return group, is_first, hamming(h, h[first]).astype(np.int64)


def group_embeddings(x, threshold, progress=None, pairs=None):
    """(group, is_first, distance = 1 - cosine to the group's first) for
    rows of ``x`` that are all finite; ``pairs`` (rows, cols) join more."""
    from .embeddings import close_pairs as cosine_pairs, unit_rows
    n = len(x)
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, bool), np.empty(0)
    u = unit_rows(x)
    rows, cols = cosine_pairs(u, float(threshold), progress=progress, unit=True)
    if pairs is not None:
        rows, cols = np.concatenate([rows, pairs[0]]), np.concatenate([cols, pairs[1]])
    group = components(n, rows, cols)
    first, is_first = firsts(group)
    dist = np.clip(1 - np.einsum("ij,ij->i", u, u[first]).astype(np.float64), 0, 2)
    dist[is_first] = 0  # not a rounding error away from it
    return group, is_first, dist


def find_duplicates(paths, method="phash", max_distance=DEFAULT_MAX_DISTANCE, skip=None,
                    progress=None, workers=None, threshold=DEFAULT_THRESHOLD, embedding=None,
                    **model):
    """Group exact (sha256), near (perceptual hash) or semantic (embedding) copies.

    Returns columns ``group`` (1-based, in order of first appearance),
    ``is_first``, ``distance`` (bits from the group's first image; 0 for
    exact; 1 - cosine for embedding) and ``problem``; all but ``problem`` are
    None for images that are skipped (``skip``) or can't be read.
    ``embedding`` (n, d) is used as given (NaN rows unreadable); without it
    the images are embedded with ``model`` (embeddings.embed's arguments).
    """
    check(method in METHODS, "bad_argument",
          f"`method` must be one of {', '.join(METHODS)}, not {method!r}.")
    check(0 <= int(max_distance) <= 64, "bad_argument",
          "`max_distance` must be a whole number from 0 to 64.")
    paths = list(paths)
    skip = [bool(s) for s in skip] if skip is not None else [False] * len(paths)
    todo = [i for i, s in enumerate(skip) if not s]
    if method == "embedding":
        ok, problems, (group, is_first, dist) = _by_embedding(
            [paths[i] for i in todo], embedding, todo, threshold, int(max_distance), progress, model)
    else:
        hashes, problems = hash_files([paths[i] for i in todo], method, progress, workers)
        ok = [k for k, h in enumerate(hashes) if h is not None]
        group, is_first, dist = group_hashes([hashes[k] for k in ok], method, int(max_distance))
    out = {"group": [None] * len(paths), "is_first": [None] * len(paths),
           "distance": [None] * len(paths), "problem": [None] * len(paths)}
    for k, problem in enumerate(problems):
        out["problem"][todo[k]] = problem
    for pos, k in enumerate(ok):
        i = todo[k]
        out["group"][i] = int(group[pos]) + 1
        out["is_first"][i] = bool(is_first[pos])
        out["distance"][i] = dist[pos].item()
    log.info("%d images in %d groups", len(ok), int(group.max()) + 1 if len(ok) else 0)
    return out


def _by_embedding(paths, embedding, todo, threshold, max_distance, progress, model):
    """(usable positions, problems, grouping) of ``paths`` by their embeddings,
    joined with the perceptual-hash pairs: a half-size or JPEG-q40 copy can sit
    below the cosine threshold (median 0.79 for half size), and the semantic
    groups must hold every plain copy the hash finds."""
    from .embeddings import vectors
    if embedding is not None and len(todo) < len(embedding):
        embedding = np.asarray(embedding)[todo]
    x, problems = vectors(paths, embedding, progress, **model)
    ok = [k for k, p in enumerate(problems) if p is None]
    # indexing copies: skip it when every row is usable (20,000 x 1280 is 100 MB)
    return ok, problems, group_embeddings(x if len(ok) == len(x) else x[ok], threshold, progress,
                                          pairs=_hash_pairs([paths[k] for k in ok], max_distance))


def _hash_pairs(paths, max_distance):
    """Pairs (positions in ``paths``) within ``max_distance`` bits of perceptual hash."""
    hashes, _ = hash_files(paths, "phash")
    have = np.array([k for k, h in enumerate(hashes) if h is not None], np.int64)
    if len(have) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    h = np.asarray([hashes[k] for k in have], dtype=np.uint64).reshape(len(have), -1)
    rows, cols = close_pairs(h, max_distance)
    return have[rows], have[cols]
