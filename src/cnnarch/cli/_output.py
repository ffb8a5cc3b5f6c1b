"""The files a command writes: checked before any work starts, never replacing what a user made unless
asked (``--overwrite``), never the command's own input, and written whole or not at all."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from cnnarch.errors import UsageError


def output_file(
    out: str | os.PathLike,
    *,
    overwrite: bool = False,
    inputs=(),
    flag: str = "--out",
    force: str = "--overwrite",
) -> Path:
    """``out`` as a Path once it is known to be writable: not empty, not a directory, not one of
    ``inputs`` (a command never writes over what it reads, even with ``--overwrite``), not an existing
    file unless ``overwrite``, and in a directory that exists (or can be created) and can be written."""
    text = os.fspath(out)
    if not text.strip():
        raise UsageError(f"{flag} is empty", hint="name the file to write")
    path = Path(text).expanduser()
    for source in inputs:
        source = Path(source).expanduser()
        if path.resolve() == source.resolve() or (
            path.exists() and source.exists() and path.samefile(source)
        ):
            raise UsageError(
                f"{flag} {text} is the input {source}: writing it would destroy what is being read",
                hint=f"choose another {flag}",
            )
    if path.is_dir():
        raise UsageError(f"{flag} {text} is a directory", hint=f"name a file in it: {flag} {path / 'FILE'}")
    if path.exists() and not overwrite:
        raise UsageError(
            f"{flag} {text} exists", hint=f"pass {force} to replace it, or choose another {flag}"
        )
    parent = next(p for p in (path.absolute().parent, *path.absolute().parents) if p.exists())
    if not parent.is_dir():
        raise UsageError(f"{flag} {text}: {parent} is not a directory", hint=f"choose another {flag}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(
            f"{flag} {text}: the directory {parent} cannot be written", hint=f"choose another {flag}"
        )
    return path


@contextmanager
def written_whole(path: Path):
    """A temporary path beside ``path`` (same suffix, for writers that choose the format by it) that
    replaces ``path`` once the block completes; on any error or Ctrl-C ``path`` is left as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; an exported file is shared like any other
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
