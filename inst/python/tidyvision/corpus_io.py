"""The safety of a corpus output file (corpus.py): one run at a time, and
SQLite's errors said as what they mean to the user.

The lock is an OS lock (flock) on a file beside the output
(``protest.sqlite.lock``), held by the process for the run's duration. The
kernel drops it when the process ends in any way, kill -9 included, so a
killed run never leaves the output locked. A lock file is removed when its
run ends; the inode check in ``_acquire`` makes that removal safe against a
run that opened the old file just before.
"""
import contextlib
import json
import os
import socket
import sqlite3
import time

from .errors import TidyvisionError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

_held = {}  # output file -> [descriptor of its lock file, depth]


def lock_path(file):
    return os.fspath(file) + ".lock"


def lock(files):
    """Lock every output file of a call, or none: TidyvisionError("corpus_busy")
    names the run that holds one. Re-entrant within a process."""
    taken = []
    try:
        for f in files:
            _enter(os.fspath(f))
            taken.append(os.fspath(f))
    except BaseException:
        unlock(taken)
        raise
    return list(taken)


def unlock(files):
    for f in files:
        entry = _held.get(os.fspath(f))
        if entry is None:
            continue
        entry[1] -= 1
        if entry[1] == 0:
            del _held[os.fspath(f)]
            _release(os.fspath(f), entry[0])


@contextlib.contextmanager
def locked(file):
    lock([file])
    try:
        yield
    finally:
        unlock([file])


def _enter(file):
    if file in _held:
        _held[file][1] += 1
    else:
        _held[file] = [_acquire(file), 1]


def _acquire(file):
    path = lock_path(file)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise TidyvisionError(
                "write_failed",
                f"Can't create the lock file {path} ({e.strerror}). Check that the folder of {file} "
                "is writable, and that nothing else has that name.") from e
        if not _try_lock(fd):
            holder = _holder(fd)
            os.close(fd)
            raise TidyvisionError(
                "corpus_busy",
                f"Another run {holder}is writing {file}. Wait for it to finish (or stop it), then run this "
                "call again; it goes on where that run stops. A run that was killed releases the file by itself.")
        # The previous holder may have removed the lock file between our open and lock.
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    # Who holds it, for the message of a run that finds it locked. Best effort:
    # on a full disk the lock holds all the same.
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
    return fd


def _try_lock(fd):
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        return True
    except OSError:
        return False


def _holder(fd):
    try:
        who = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return f"(process {who['pid']} on {who['host']}, since {who['since']}) "
    except (OSError, ValueError, KeyError, AttributeError):
        return ""


def _release(file, fd):
    if fcntl is not None:  # an open file can't be removed on Windows
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock_path(file))
    os.close(fd)


# SQLite's errors ------------------------------------------------------------------

# primary result codes (sqlite3.h) -> (kind, what it means, what to do)
_CODES = {
    13: ("disk_full", "the disk that holds it is full",
         "The finished chunks are kept in it. Free some space, then run the same call again to go on."),
    11: ("corpus_corrupt", "it is damaged",
         "Restore it from a backup, or redo it with overwrite = TRUE (which deletes it)."),
    26: ("corpus_corrupt", "it is not an SQLite database",
         "Give another `output`, or move that file away."),
    5: ("corpus_busy", "another program kept it locked for over a minute",
        "Close the program that reads or writes it, then run the same call again."),
    8: ("write_failed", "it can't be written (read-only)",
        "Check the permissions of the file and its folder."),
    14: ("write_failed", "it can't be opened",
         "Check that its folder exists and is writable."),
    10: ("write_failed", "the disk failed to read or write it",
         "Check the disk and the free space; the finished chunks are kept."),
    3: ("write_failed", "access to it is denied", "Check the permissions of the file and its folder."),
}


@contextlib.contextmanager
def told(file):
    """SQLite errors a user can act on, as TidyvisionError naming ``file``; any
    other sqlite3 error (an SQL mistake: a bug) passes through unchanged."""
    try:
        yield
    except sqlite3.Error as e:
        code = getattr(e, "sqlite_errorcode", None)
        known = _CODES.get(code & 0xFF) if code is not None else None
        if known is None:
            raise
        kind, what, todo = known
        raise TidyvisionError(kind, f"Can't use {file}: {what} (SQLite: {e}). {todo}") from e
