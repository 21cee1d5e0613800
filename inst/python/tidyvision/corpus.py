"""Labelling a whole corpus into SQLite, resumably: classify_folder() in R.

One output file per shard. Its tables:

- ``meta``: what wrote it (task, task fingerprint, shards, package version);
- ``images``: every image of the shard, in listing order, with the chunk
  that did it (NULL while pending) and its ``problem``;
- ``results``: the task's rows (one per image for a classifier, one per
  tag, object or face otherwise), with ``problem``;
- ``chunks``: one row per finished chunk.

A chunk's results, its images' chunk numbers and its ``chunks`` row are
written in one transaction, so a run killed at any moment leaves whole
chunks only, and the next run takes the pending images in listing order.
Python's sqlite3 uses SQLite's rollback journal with synchronous=FULL here:
safe against kill -9 and power loss, and no WAL (which needs shared memory
that NFS and Lustre don't give).
"""
import hashlib
import json
import sqlite3
import time

from . import classifier, images
from .errors import TidyvisionError, check

FORMAT = "tidyvision-corpus"
FORMAT_VERSION = "1"
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
        return ["path", ".pred_class"] + [".pred_" + c for c in task["classes"]] + ["problem"]
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
    written by the same task. Returns the images pending per file."""
    if paths is None:
        paths = images.find_image_paths(root, recursive)
    by_shard = {int(k): [] for k in shard_ids}
    for p in paths:
        k = shard_of(p, int(n_shards))
        if k in by_shard:
            by_shard[k].append(p)
    pending = []
    for file, k in zip(files, shard_ids):
        pending.append(_plan_file(file, int(k), int(n_shards), task, fingerprint, meta, by_shard[int(k)]))
    return {"file": list(files), "pending": pending, "listed": len(paths)}


def _plan_file(file, shard, n_shards, task, fingerprint, meta, paths):
    con = _connect(file)
    try:
        con.execute("BEGIN IMMEDIATE")
        if _has_meta(con):
            _check_same(con, file, fingerprint, n_shards)
        else:
            _create(con, task, fingerprint, dict(meta, shard=shard, shards=n_shards))
        con.executemany("INSERT OR IGNORE INTO images (path) VALUES (?)", ((p,) for p in paths))
        con.execute("COMMIT")
        return con.execute("SELECT count(*) FROM images WHERE chunk IS NULL").fetchone()[0]
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise
    finally:
        con.close()


def _has_meta(con):
    return con.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone() is not None


def _create(con, task, fingerprint, meta):
    cols = ", ".join(_quote(c) for c in columns(task))
    con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    con.execute("CREATE TABLE images (path TEXT PRIMARY KEY, chunk INTEGER, problem TEXT)")
    con.execute("CREATE TABLE chunks (chunk INTEGER PRIMARY KEY, n_images INTEGER, "
                "seconds REAL, finished TEXT)")
    con.execute(f"CREATE TABLE results ({cols})")
    values = dict(meta, format=FORMAT, format_version=FORMAT_VERSION, task=task["kind"],
                  fingerprint=fingerprint, columns=json.dumps(columns(task)),
                  created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    con.executemany("INSERT INTO meta VALUES (?, ?)", ((k, str(v)) for k, v in values.items()))


def read_meta(file):
    con = sqlite3.connect(f"file:{file}?mode=ro", uri=True)
    try:
        return dict(con.execute("SELECT key, value FROM meta").fetchall())
    finally:
        con.close()


def _check_same(con, file, fingerprint, n_shards):
    meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    check(meta.get("format") == FORMAT, "corpus_mismatch",
          f"{file} is not an output of classify_folder().")
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


# Running ------------------------------------------------------------------------

def run(file, task, chunk_size=1000, batch_size=64, progress=None, done_before=0, total=None):
    """Process the pending images of one output file, a chunk per transaction.

    ``progress(done, total)`` ticks per batch; ``done_before`` and ``total``
    place this file in a bar over several. Returns counts and a few problems.
    """
    con = _connect(file)
    try:
        todo = [r[0] for r in con.execute("SELECT path FROM images WHERE chunk IS NULL ORDER BY rowid")]
        first = (con.execute("SELECT max(chunk) FROM chunks").fetchone()[0] or 0) + 1
        insert = (f"INSERT INTO results ({', '.join(_quote(c) for c in columns(task))}) "
                  f"VALUES ({', '.join('?' * len(columns(task)))})")
        summary = {"done": 0, "problems": 0, "path": [], "problem": []}
        total = int(total) if total is not None else len(todo)
        chunks = images.batched(todo, int(chunk_size))
        batches = [b for c in chunks for b in images.batched(c, int(batch_size))]
        ends = _chunk_ends(chunks, int(batch_size))
        rows, started, done = [], time.monotonic(), int(done_before)
        for i, (chunk_paths, cols) in enumerate(task_batches(task, batches)):
            rows.append((chunk_paths, cols))
            if i in ends:
                _commit(con, insert, first + ends[i], rows, columns(task), started, summary)
                rows, started = [], time.monotonic()
            done += len(chunk_paths)
            if progress is not None:
                progress(done, total)
        return summary
    finally:
        con.close()


def _chunk_ends(chunks, batch_size):
    """{index of a chunk's last batch: chunk number from 0}."""
    ends, i = {}, -1
    for k, c in enumerate(chunks):
        i += (len(c) + batch_size - 1) // batch_size
        ends[i] = k
    return ends


def _commit(con, insert, chunk, rows, names, started, summary):
    paths = [p for chunk_paths, _ in rows for p in chunk_paths]
    problems = {}
    for _, cols in rows:
        problems.update((p, q) for p, q in zip(cols["path"], cols["problem"]) if q is not None)
    con.execute("BEGIN IMMEDIATE")
    try:
        for _, cols in rows:
            con.executemany(insert, zip(*(cols[c] for c in names)))
        con.executemany("UPDATE images SET chunk = ?, problem = ? WHERE path = ?",
                        ((chunk, problems.get(p), p) for p in paths))
        con.execute("INSERT INTO chunks VALUES (?, ?, ?, ?)",
                    (chunk, len(paths), time.monotonic() - started, time.strftime("%Y-%m-%dT%H:%M:%S%z")))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    summary["done"] += len(paths)
    summary["problems"] += len(problems)
    for p, q in list(problems.items())[:max(0, 5 - len(summary["path"]))]:
        summary["path"].append(p)
        summary["problem"].append(q)


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


def _classifier_batches(task, batches):
    classes = list(task["classes"])
    for _, chunk, probs, problems in classifier.predict_batches(
            batches, task["weights"], task["backbone"], len(classes), task["resize"],
            task["image_size"], task["device"], task["precision"]):
        cols = {"path": chunk, "problem": problems,
                ".pred_class": [None if q is not None else classes[int(p.argmax())] for p, q in zip(probs, problems)]}
        for j, c in enumerate(classes):
            cols[".pred_" + c] = [None if q is not None else float(p[j]) for p, q in zip(probs, problems)]
        yield chunk, cols
