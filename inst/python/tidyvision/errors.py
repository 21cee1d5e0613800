"""The one exception type the engine raises for problems a user can fix.

R reads ``kind`` and re-raises the error as ``tidyvision_error_<kind>``.
"""
import errno
import os
from contextlib import contextmanager


class TidyvisionError(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


def check(condition, kind, message):
    if not condition:
        raise TidyvisionError(kind, message)


@contextmanager
def writing_in(folder):
    """An OSError while writing in ``folder`` that comes from the folder itself
    (read-only, immutable, on a read-only disk) as a ``not_writable`` error
    naming it. Other OSErrors (one locked file, a full disk) pass through: the
    caller may treat them as that file's problem."""
    try:
        yield
    except OSError as e:
        if e.errno == errno.EROFS or not _writable(folder):
            raise TidyvisionError(
                "not_writable",
                f"Can't write in {folder}: {e.strerror or e}. The folder is read-only or locked; "
                "make it writable, or give another folder.") from None
        raise


def _writable(folder):
    """Can this process create files in ``folder`` (or, while it does not exist
    yet, in the nearest folder above it that does)?"""
    folder = os.path.abspath(folder)
    while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    return os.access(folder, os.W_OK | os.X_OK)


def weights_unreadable(path, error):
    """The error for a weights file that exists but can't be read as one."""
    return TidyvisionError(
        "weights_unreadable",
        f"The weights file {path} is damaged: {type(error).__name__}: {error}. It was probably "
        "cut short (an interrupted copy, download or save) or is not a weights file. Save the "
        "classifier again with save_classifier(), or copy the file again from where it came from.")
