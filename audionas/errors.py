"""User-facing errors: one line naming the file or field, exit code 2, never a traceback; and warnings."""

import contextlib
import os
import sys
import warnings

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_PASSED = (_PACKAGE, os.path.abspath(contextlib.__file__))


class UserError(Exception):
    """A mistake in the user's input (file, flag, config field); printed as one line, exit code 2."""

    exit_code = 2

    def __init__(self, *args):
        # torch re-raises a DataLoader worker's exception as type(e)("Caught UserError in DataLoader worker
        # process N.\nOriginal Traceback ... audionas.errors.UserError: <line>"): keep the line only.
        text = args[0] if len(args) == 1 and isinstance(args[0], str) else ""
        if text.startswith(f"Caught {type(self).__name__} ") and "\nOriginal Traceback" in text:
            args = (text.rstrip().rsplit("\n", 1)[-1].split(": ", 1)[-1],)
        super().__init__(*args)


def first_line(e: BaseException) -> str:
    """The first line of a library's exception text (its type's name when it has none), for a one-line
    UserError that wraps it."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


class ReadWarning(UserWarning):
    """A warning about a file read while a run trains: under torchrun the rank that reads it says it (other
    warnings come from rank 0 alone, as every rank builds the same data and model)."""


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """warnings.warn attributed to the user's line: the first caller outside audionas (and contextlib).
    A fixed stacklevel named audionas's own code whenever a call gained a frame (train's decorator: rundir.py;
    before it, contextlib)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PASSED):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level + 1)
