"""The one exception type the engine raises for problems a user can fix.

R reads ``kind`` and re-raises the error as ``tidyvision_error_<kind>``.
"""


class TidyvisionError(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


def check(condition, kind, message):
    if not condition:
        raise TidyvisionError(kind, message)
