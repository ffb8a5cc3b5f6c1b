"""Errors a user can cause and fix. Library code raises them with a message that names the file or value
and the way out; the command line (``cnnarch.cli.main``) prints that message and exits with
``exit_code``, without a traceback.

``UsageError`` and ``InputError`` are also ``ValueError`` so that callers written against the library's
older ``ValueError`` contract keep working. This module imports nothing heavy: the CLI loads it while
``cnnarch --help`` must stay fast."""

from __future__ import annotations


class CnnarchError(Exception):
    """Base class. ``hint`` (optional) is the way out, printed on a second line by the CLI."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


class UsageError(CnnarchError, ValueError):
    """A flag, option or combination of them that cannot work (e.g. an output that exists without
    ``--overwrite``, a run folder locked by another live run)."""

    exit_code = 2


class InputError(CnnarchError, ValueError):
    """A file or value given to cnnarch is not what it must be (a corrupt or wrong checkpoint, weights
    with NaN or the wrong shapes, a malformed ``CxHxW``)."""

    exit_code = 2


class ResourceError(CnnarchError):
    """The machine lacks what the command needs (memory, disk space); the message says how much."""

    exit_code = 1
