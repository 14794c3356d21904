"""The project's error classes that mean "the input is wrong", and how a message becomes one line.

:class:`InputError` is raised where an input (a file, a flag, a config field, a name, the data
directory) is checked, and names that input. Only it, and an ``OSError`` about a path (a missing or
unreadable file the user named), is reported as the user's fault: one line on stderr, exit
status 2, never retried. A builtin ``TypeError``, ``KeyError``, ``RuntimeError`` or a plain
``ValueError`` is a bug in our code and shows its traceback.

It subclasses ``ValueError`` so that callers (and tests) that caught the ``ValueError`` an input
check raised before keep working.
"""

from __future__ import annotations

import os

DEBUG_ENV = "GENZOO_DEBUG"  # set to anything: every entry point shows the traceback


class InputError(ValueError):
    """An input (file, flag, config field, name, folder) is wrong; the message names it."""


def input_error(exc: BaseException | None) -> BaseException | None:
    """The exception in ``exc``'s ``__cause__`` chain (itself first) that is the user's input, or
    None when there is none: then ``exc`` is a bug.

    An ``OSError`` counts when it names a path (``filename``): a file the user gave that is missing,
    unreadable or on a full disk. Wrappers such as a step's ``dg.Failure`` are looked through, so
    the message is the check's own.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, InputError) or (isinstance(exc, OSError) and exc.filename is not None):
            return exc
        exc = exc.__cause__
    return None


def is_input_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is the user's input, not our bug."""
    return input_error(exc) is not None


def debug() -> bool:
    """Whether ``GENZOO_DEBUG`` asks for tracebacks."""
    return bool(os.environ.get(DEBUG_ENV))


def one_line(message: object) -> str:
    """``message`` with its lines joined by spaces: an error is one line on a terminal."""
    return " ".join(line.strip() for line in str(message).splitlines() if line.strip())


class MissingInputError(InputError, FileNotFoundError):
    """A file or folder an input names does not exist (also a FileNotFoundError for old callers)."""
