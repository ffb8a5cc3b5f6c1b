"""Downloading with a checksum, and safe archive extraction.

Any URL that :func:`urllib.request.urlopen` reads works: https://, http:// and file:// (the tests
serve a tiny archive from 127.0.0.1). A download goes to a temporary file, its MD5 is checked
against the published one, and only then is it renamed into place, so an interrupted or tampered
download never looks like a good file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from cnnarch.progress import progress as show_progress


class DownloadError(OSError):
    """The dataset could not be fetched (offline, server error, checksum mismatch)."""


def md5sum(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def download(
    url: str, dest: str | Path, md5: str | None, *, progress: bool = True, timeout: float = 30
) -> Path:
    """Fetch ``url`` to the file ``dest`` and check its MD5; returns ``dest``.

    An existing ``dest`` with the right checksum is kept as it is. Raises :class:`DownloadError`
    naming the URL when the server cannot be reached or the checksum differs (the bad file is
    deleted).
    """
    dest = Path(dest)
    if dest.is_file() and (md5 is None or md5sum(dest) == md5):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    h = hashlib.md5(usedforsecurity=False)
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "cnnarch"})
        with urllib.request.urlopen(request, timeout=timeout) as response, os.fdopen(fd, "wb") as f:
            total = int(response.headers.get("Content-Length") or 0) or None
            with show_progress(total, f"downloading {dest.name}", "B", enabled=progress) as bar:
                while block := response.read(1 << 20):
                    f.write(block)
                    h.update(block)
                    bar.update(len(block))
        if md5 is not None and h.hexdigest() != md5:
            raise DownloadError(
                f"checksum mismatch for {url}: MD5 {h.hexdigest()}, expected {md5}; the file is corrupt "
                "or not the official one and was deleted. Try again, or fetch it by hand and pass its "
                "directory as --data"
            )
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError, ValueError) as e:
        if isinstance(e, DownloadError):
            raise
        reason = getattr(e, "reason", e)
        raise DownloadError(f"could not download {url} ({type(e).__name__}: {reason})") from e
    finally:  # also on Ctrl-C: no partial file is left behind
        Path(tmp).unlink(missing_ok=True)
    return dest


def extract(archive: str | Path, into: str | Path) -> Path:
    """Extract a .tar/.tar.gz/.tgz ``archive`` into the directory ``into`` and return ``into``.

    Members that would land outside ``into`` (absolute paths, ``..``, links out) are refused
    (tarfile's "data" filter). Extraction goes to a temporary directory first, then its entries
    are renamed into place, so a crash leaves no half-extracted dataset behind.
    """
    into = Path(into)
    into.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=into))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        for entry in tmp.iterdir():
            target = into / entry.name
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            os.replace(entry, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return into
