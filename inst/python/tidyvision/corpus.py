"""Labelling a whole corpus into SQLite, resumably: classify_folder() in R.

One output file per shard. Its tables:

- ``meta``: what wrote it (task, task fingerprint, shards, package version);
- ``images``: every image of the shard, in listing order, with the chunk
  that did it (NULL while pending), its ``problem``, the file's ``size`` and
  ``mtime_ns`` when it was listed, the ``sha256`` of what was read (stored
  only when the file did not change while its chunk ran) and ``missing``
  (the file was gone when the output was last planned);
- ``results``: the task's rows (one per image for a classifier, one per
  tag, object or face otherwise), with ``problem``; a classifier's rows also
  say whether the image ``trained`` or validated the model (by content:
  ``trained_flags``), so its own images never pass for a corpus sample;
- ``chunks``: one row per finished chunk.

A chunk's results, its images' chunk numbers and its ``chunks`` row are
written in one transaction, so a run killed at any moment leaves whole
chunks only, and the next run takes the pending images in listing order.
Python's sqlite3 uses SQLite's rollback journal with synchronous=FULL here:
safe against kill -9 and power loss, and no WAL (which needs shared memory
that NFS and Lustre don't give).

Each plan compares every image with what was recorded: a file whose size or
time changed is hashed, and when its content differs its rows are deleted
and it is pending again, so no answer outlives its image. A run holds an OS
lock on the file (corpus_io.py), so two runs never write one output.
"""
import hashlib
import json
import os
import sqlite3
import stat
import time

import numpy as np

from . import classifier, corpus_io, images, prepare
from .corpus_io import lock, unlock  # noqa: F401  (R calls corpus.lock / corpus.unlock)
from .errors import TidyvisionError, check

FORMAT = "tidyvision-corpus"
FORMAT_VERSION = "3"
# columns that format 1 lacked: added in place by _migrate()
IMAGE_COLUMNS = (("size", "INTEGER"), ("mtime_ns", "INTEGER"), ("sha256", "TEXT"),
                 ("missing", "INTEGER NOT NULL DEFAULT 0"))
DETECT_COLUMNS = ("path", "object", "class", "confidence", "xmin", "ymin", "xmax", "ymax",
                  "image_width", "image_height", "problem")
FACE_COLUMNS = ("path", "face", "confidence", "score", "xmin", "ymin", "xmax", "ymax",
                "image_width", "image_height", "problem")
TAG_COLUMNS = ("path", "tag", "confidence", "source", "problem")
IMAGENET_SOURCE = "efficientnet_lite0 (ImageNet-1k)"


def shard_of(path, n_shards):
    """1..n_shards from the path's md5: the same on every machine and run."""
    if n_shards == 1:
        return 1
    digest = hashlib.md5(path.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % n_shards + 1


def columns(task):
    kind = task["kind"]
    if kind == "classifier":
        return ["path", ".pred_class"] + [".pred_" + c for c in task["classes"]] + ["trained", "problem"]
    return list({"imagenet": TAG_COLUMNS, "detector": DETECT_COLUMNS, "faces": FACE_COLUMNS}[kind])


def _quote(name):
    return '"' + name.replace('"', '""') + '"'


def _connect(path):
    con = sqlite3.connect(path, isolation_level=None, timeout=60)
    con.execute("PRAGMA synchronous = FULL")
    return con


# Planning ---------------------------------------------------------------------

def plan(files, shard_ids, n_shards, task, fingerprint, meta, paths=None, root=None, recursive=True):
    """List the images (``paths``, or the files below ``root``), and add each
    shard's images to its output file, creating it or checking that it was
    written by the same task. Returns per file the images pending, those
    redone because their file changed, and those whose file is gone."""
    if paths is None:
        paths = images.find_image_paths(root, recursive)
    by_shard = {int(k): [] for k in shard_ids}
    for p in paths:
        k = shard_of(p, int(n_shards))
        if k in by_shard:
            by_shard[k].append(p)
    planned = [_plan_file(file, int(k), int(n_shards), task, fingerprint, meta, by_shard[int(k)])
               for file, k in zip(files, shard_ids)]
    return {"file": list(files), "listed": len(paths),
            **{key: [p[key] for p in planned] for key in ("pending", "changed", "missing")}}


def _plan_file(file, shard, n_shards, task, fingerprint, meta, paths):
    with corpus_io.locked(file), corpus_io.told(file):
        con = _connect(file)
        try:
            con.execute("BEGIN IMMEDIATE")
            _check_or_create(con, file, task, fingerprint, dict(meta, shard=shard, shards=n_shards))
            counts = _add_images(con, paths)
            con.execute("COMMIT")
            counts["pending"] = con.execute("SELECT count(*) FROM images WHERE chunk IS NULL").fetchone()[0]
            return counts
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        finally:
            con.close()


def _check_or_create(con, file, task, fingerprint, meta):
    tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    if "meta" in tables:
        _check_same(con, file, fingerprint, meta["shards"])
        _migrate(con, task)
    elif tables:
        # Someone else's database: never add our tables to it.
        raise TidyvisionError(
            "not_a_corpus",
            f"{file} is an SQLite database that classify_folder() did not write (its tables: "
            f"{', '.join(tables)}). Give another `output`; classify_folder() never writes into or deletes it.")
    else:
        _create(con, task, fingerprint, meta)


def _create(con, task, fingerprint, meta):
    cols = ", ".join(_quote(c) for c in columns(task))
    con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    extra = ", ".join(f"{name} {decl}" for name, decl in IMAGE_COLUMNS)
    con.execute(f"CREATE TABLE images (path TEXT PRIMARY KEY, chunk INTEGER, problem TEXT, {extra})")
    con.execute("CREATE TABLE chunks (chunk INTEGER PRIMARY KEY, n_images INTEGER, "
                "seconds REAL, finished TEXT)")
    con.execute(f"CREATE TABLE results ({cols})")
    values = dict(meta, format=FORMAT, format_version=FORMAT_VERSION, task=task["kind"],
                  fingerprint=fingerprint, columns=json.dumps(columns(task)),
                  created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    con.executemany("INSERT INTO meta VALUES (?, ?)", ((k, str(v)) for k, v in values.items()))


def _check_same(con, file, fingerprint, n_shards):
    meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    check(meta.get("format") == FORMAT and "fingerprint" in meta, "not_a_corpus",
          f"{file} is an SQLite database that classify_folder() did not write (its meta table is another "
          "program's). Give another `output`; classify_folder() never writes into or deletes it.")
    check(int(meta.get("format_version", 1)) <= int(FORMAT_VERSION), "corpus_mismatch",
          f"{file} was written by a newer tidyvision (format {meta.get('format_version')}). Update tidyvision.")
    old, new = json.loads(meta["fingerprint"]), json.loads(fingerprint)
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if changed:
        what = "; ".join(f"{k}: {old.get(k)!r} there, {new.get(k)!r} now" for k in changed)
        raise TidyvisionError(
            "corpus_mismatch",
            f"{file} was written by another task or settings ({what}). Give another `output`, "
            "or use overwrite = TRUE to start it afresh.")
    check(int(meta["shards"]) == n_shards, "corpus_mismatch",
          f"{file} was written with shards = {meta['shards']}, not {n_shards}. Use the same "
          "`shards`, or overwrite = TRUE to start afresh.")


def _migrate(con, task):
    """Give a format-1 output the columns of format 2, and a classifier's
    output of format 1 or 2 the ``trained`` column of format 3 (its images
    resume as they are; ``_fill_trained`` flags the done ones)."""
    have = {r[1] for r in con.execute("PRAGMA table_info(images)")}
    for name, decl in IMAGE_COLUMNS:
        if name not in have:
            con.execute(f"ALTER TABLE images ADD COLUMN {name} {decl}")
    if task["kind"] == "classifier":
        if "trained" not in {r[1] for r in con.execute("PRAGMA table_info(results)")}:
            con.execute("ALTER TABLE results ADD COLUMN trained INTEGER")
            con.execute("INSERT OR REPLACE INTO meta VALUES ('columns', ?)", (json.dumps(columns(task)),))
        _fill_trained(con, task)
    con.execute("INSERT OR REPLACE INTO meta VALUES ('format_version', ?)", (FORMAT_VERSION,))


def _fill_trained(con, task):
    """Flag the done rows that have no ``trained`` yet (written before format
    3), from their files; a file that is gone stays NULL (unknown)."""
    index = SeenIndex(task)
    if index.empty:
        return
    todo = [r[0] for r in con.execute(
        "SELECT results.path FROM results JOIN images ON images.path = results.path "
        "WHERE results.trained IS NULL AND results.problem IS NULL AND images.missing = 0")]
    todo = [p for p in todo if os.path.exists(p)]
    con.executemany("UPDATE results SET trained = ? WHERE path = ?", zip(index.flags(todo), todo))


# Which images are new, changed or gone ---------------------------------------------

def _stat(path):
    """(size, mtime_ns, is a regular file) or None when the file is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, stat.S_ISREG(st.st_mode)


def _add_images(con, paths):
    """Insert new images; check every known one against its file. A done image
    whose content changed (size or time differ and so does the hash) loses its
    rows and is pending again; a touched one only gets its new time. Returns
    how many changed and how many of the output's images are gone."""
    known = {r[0]: r[1:] for r in con.execute("SELECT path, size, mtime_ns, sha256, chunk, missing FROM images")}
    new = [p for p in dict.fromkeys(paths) if p not in known]
    con.executemany("INSERT INTO images (path, size, mtime_ns, missing) VALUES (?, ?, ?, ?)",
                    (_stat_row(p) for p in new))
    changed = 0
    for path, (size, mtime, sha, chunk, missing) in known.items():
        st = _stat(path)
        if st is None:
            if not missing:
                con.execute("UPDATE images SET missing = 1 WHERE path = ?", (path,))
            continue
        same = (size, mtime) == st[:2]
        if same and not missing:
            continue
        if same or size is None or chunk is None or (sha is not None and st[2] and images.file_sha256(path) == sha):
            # unchanged, recorded before format 2, still pending, or only touched
            con.execute("UPDATE images SET size = ?, mtime_ns = ?, missing = 0 WHERE path = ?", (*st[:2], path))
            continue
        con.execute("DELETE FROM results WHERE path = ?", (path,))
        con.execute("UPDATE images SET chunk = NULL, problem = NULL, sha256 = NULL, size = ?, mtime_ns = ?, "
                    "missing = 0 WHERE path = ?", (*st[:2], path))
        changed += 1
    missing = con.execute("SELECT count(*) FROM images WHERE missing = 1").fetchone()[0]
    return {"changed": changed, "missing": missing}


def _stat_row(path):
    st = _stat(path)
    return (path, None, None, 1) if st is None else (path, st[0], st[1], 0)


# Running ------------------------------------------------------------------------

def run(file, task, chunk_size=1000, batch_size=64, progress=None, done_before=0, total=None):
    """Process the pending images of one output file, a chunk per transaction.

    ``progress(done, total)`` ticks per batch; ``done_before`` and ``total``
    place this file in a bar over several. Returns counts and a few problems.
    """
    with corpus_io.locked(file), corpus_io.told(file):
        con = _connect(file)
        try:
            return _run(con, task, int(chunk_size), int(batch_size), progress, int(done_before), total)
        finally:
            con.close()


def _run(con, task, chunk_size, batch_size, progress, done, total):
    listed = {r[0]: r[1:] for r in con.execute(
        "SELECT path, size, mtime_ns FROM images WHERE chunk IS NULL ORDER BY rowid")}
    todo = list(listed)
    first = (con.execute("SELECT max(chunk) FROM chunks").fetchone()[0] or 0) + 1
    insert = (f"INSERT INTO results ({', '.join(_quote(c) for c in columns(task))}) "
              f"VALUES ({', '.join('?' * len(columns(task)))})")
    summary = {"done": 0, "problems": 0, "path": [], "problem": []}
    total = int(total) if total is not None else len(todo)
    chunks = images.batched(todo, chunk_size)
    batches = [b for c in chunks for b in images.batched(c, batch_size)]
    ends = _chunk_ends(chunks, batch_size)
    rows, started = [], time.monotonic()
    for i, (chunk_paths, cols) in enumerate(task_batches(task, batches)):
        rows.append((chunk_paths, cols))
        if i in ends:
            _commit(con, insert, first + ends[i], rows, columns(task), started, summary, listed)
            rows, started = [], time.monotonic()
        done += len(chunk_paths)
        if progress is not None:
            progress(done, total)
    return summary


def _chunk_ends(chunks, batch_size):
    """{index of a chunk's last batch: chunk number from 0}."""
    ends, i = {}, -1
    for k, c in enumerate(chunks):
        i += (len(c) + batch_size - 1) // batch_size
        ends[i] = k
    return ends


def _commit(con, insert, chunk, rows, names, started, summary, listed):
    paths = [p for chunk_paths, _ in rows for p in chunk_paths]
    problems = {}
    for _, cols in rows:
        problems.update((p, q) for p, q in zip(cols["path"], cols["problem"]) if q is not None)
    hashes = [_hash_if_unchanged(p, listed[p]) for p in paths]
    con.execute("BEGIN IMMEDIATE")
    try:
        for _, cols in rows:
            con.executemany(insert, zip(*(cols[c] for c in names)))
        con.executemany("UPDATE images SET chunk = ?, problem = ?, sha256 = ? WHERE path = ?",
                        ((chunk, problems.get(p), h, p) for p, h in zip(paths, hashes)))
        con.execute("INSERT INTO chunks VALUES (?, ?, ?, ?)",
                    (chunk, len(paths), time.monotonic() - started, time.strftime("%Y-%m-%dT%H:%M:%S%z")))
        con.execute("COMMIT")
    except BaseException:
        # After SQLITE_FULL, SQLite has rolled back by itself: a second
        # ROLLBACK would fail and hide the real error.
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise
    summary["done"] += len(paths)
    summary["problems"] += len(problems)
    for p, q in list(problems.items())[:max(0, 5 - len(summary["path"]))]:
        summary["path"].append(p)
        summary["problem"].append(q)


def _hash_if_unchanged(path, recorded):
    """The sha256 of a regular file that still has the size and time it was
    listed with (so the hash is of what the task read), else None: a file
    changed mid-run is redone next time. Cheap: the task has just read it."""
    st = _stat(path)
    if st is None or not st[2] or tuple(recorded) != st[:2]:
        return None
    try:
        return images.file_sha256(path)
    except OSError:
        return None


# Tasks: each yields (paths of the batch, columns of its rows) ---------------------

def task_batches(task, batches):
    kind = task["kind"]
    check(kind in ("classifier", "imagenet", "detector", "faces"), "bad_argument", f"Unknown task {kind!r}.")
    if kind == "classifier":
        yield from _classifier_batches(task, batches)
    elif kind == "imagenet":
        from . import tags
        for _, chunk, cols in tags.imagenet_batches(batches, task["top_k"], task["device"]):
            cols["source"] = [IMAGENET_SOURCE] * len(cols["path"])
            yield chunk, cols
    elif kind == "detector":
        from . import detect
        for _, chunk, cols in detect.detect_batches(batches, task["model"], task["confidence"], task["iou"],
                                                    task.get("classes"), task.get("image_size"), task["device"]):
            yield chunk, cols
    else:
        from . import faces
        for _, chunk, cols in faces.detect_batches(batches, task["model"], task["upsample"], task["confidence"]):
            yield chunk, cols


class SeenIndex:
    """The fit's train and val images (fine_tune.py ``seen_images``): an image
    is one of them when its sha256 is among theirs, or its phashes are within
    prepare.DEFAULT_MAX_DISTANCE bits of one's (find_duplicates()' distance),
    so a resized or re-encoded copy counts too. ``empty`` for a fit that
    does not carry them (saved before they were kept): flags are then None."""

    def __init__(self, task):
        seen = task.get("seen") or {}
        self.sha256 = set(seen.get("sha256") or [])
        rows = [[int(h[i:i + 16], 16) for i in range(0, len(h), 16)] for h in seen.get("phash") or [] if h]
        self.phash = np.array(rows, dtype=np.uint64).reshape(len(rows), len(prepare.CROP_FRACTIONS) + 1)
        self.empty = not seen

    def flags(self, paths):
        """Per path 1 (one of the fit's images), 0, or None (unknown: unreadable, or no index)."""
        if self.empty:
            return [None] * len(paths)
        return images.parallel_map(self._flag, paths)

    def _flag(self, path):
        digest, _ = prepare.sha256_file(path)
        if digest is None:
            return None
        if digest in self.sha256:
            return 1
        hashes, _ = prepare.phash_file(path)
        if hashes is None:
            return None
        if not len(self.phash):
            return 0
        near = prepare.hamming(np.array(hashes, dtype=np.uint64)[None], self.phash).min()
        return int(near <= prepare.DEFAULT_MAX_DISTANCE)


def _classifier_batches(task, batches):
    classes = list(task["classes"])
    index = SeenIndex(task)
    for _, chunk, probs, problems in classifier.predict_batches(
            batches, task["weights"], task["backbone"], len(classes), task["resize"],
            task["image_size"], task["device"], task["precision"]):
        cols = {"path": chunk, "problem": problems,
                ".pred_class": [None if q is not None else classes[int(p.argmax())] for p, q in zip(probs, problems)]}
        for j, c in enumerate(classes):
            cols[".pred_" + c] = [None if q is not None else float(p[j]) for p, q in zip(probs, problems)]
        flags = iter(index.flags([p for p, q in zip(chunk, problems) if q is None]))
        cols["trained"] = [None if q is not None else next(flags) for q in problems]
        yield chunk, cols
