"""ImageFolder trees of small images, decoded once into a ``uint8`` tensor cache on disk.

Layout (torchvision's ImageFolder)::

    root/<split>/<class>/<image>.jpg     e.g. cifar10-jpeg/train/cat/0001.jpg

Classes are the sub-directories in sorted order, so labels match torchvision's ImageFolder.
Decoding 60,000 small JPEGs with Pillow takes seconds to a minute; the result is saved to
``<cache_dir>/folders/<name>-<split>-<mode>-v<version>-<key>.pt`` and later loads take about a
second. The key hashes the tree's absolute path, every file's relative path, size and mtime, and
the decode options, so adding, removing or touching a file rebuilds the cache. The file is written
atomically.
"""

from __future__ import annotations

import concurrent.futures
import errno
import hashlib
import multiprocessing
import os
import re
import sys
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image

from cnnarch.data.base import (
    CorruptImageError,
    ImageTensors,
    atomic_torch_save,
    default_cache_dir,
    first_per_class,
)
from cnnarch.errors import InputError, check_memory
from cnnarch.progress import start_progress

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
CACHE_VERSION = 3
_LAYOUT = "root/<split>/<class>/<image>.jpg (ImageFolder layout, like cifar10-jpeg/train/cat/0001.jpg)"


def scan_image_folder(
    directory: str | Path, limit: int | None = None
) -> tuple[list[str], list[str], list[int]]:
    """Find the classes and image files of an ImageFolder tree.

    Returns ``(classes, files, labels)``: ``files`` are paths relative to ``directory``
    ("cat/0001.jpg"), sorted by class, then by name. With ``limit``, keep the first ``limit``
    images taken round-robin over the classes (so a small limit still sees every class).

    Raises FileNotFoundError when ``directory`` is missing and ValueError (saying what layout was
    expected) when it has no class directories, has images outside them, or a class has no image.
    """
    classes, files, labels, _ = _scan(Path(directory), limit)
    return classes, files, labels


def _scan(directory: Path, limit: int | None, expected: list[str] | None = None):
    """``scan_image_folder`` plus each file's ``(size, mtime_ns)``; os.scandir keeps it under a
    second for 50,000 files."""
    if not directory.is_dir():
        raise FileNotFoundError(f"image folder {directory} does not exist; expected {_LAYOUT}")
    entries = sorted(os.scandir(directory), key=lambda e: e.name)
    classes = [e.name for e in entries if _resolves(e, e.is_dir) and not e.name.startswith(".")]
    stray = [e.name for e in entries if _resolves(e, e.is_file) and e.name.lower().endswith(IMG_EXTENSIONS)]
    if stray:
        raise ValueError(
            f"{directory} has images directly inside it ({stray[0]}, ...), not in class "
            f"sub-directories; expected {_LAYOUT}"
        )
    if not classes:
        raise ValueError(f"{directory} has no class sub-directories; expected {_LAYOUT}")
    if expected is not None and classes != list(expected):
        missing, extra = sorted(set(expected) - set(classes)), sorted(set(classes) - set(expected))
        raise ValueError(
            f"{directory} has classes that differ from the training set's (missing: {missing or 'none'}, "
            f"extra: {extra or 'none'}); labels would not match. Every split needs the same <class> "
            f"directories; expected {_LAYOUT}"
        )
    per_class = None if limit is None else -(-limit // len(classes))
    files, labels, stats = [], [], []
    for label, name in enumerate(classes):
        found = sorted(
            (
                e
                for e in os.scandir(directory / name)
                if e.name.lower().endswith(IMG_EXTENSIONS)
                and not e.name.startswith(".")
                and _resolves(e, e.is_file)
            ),
            key=lambda e: e.name,
        )[:per_class]
        if not found:
            raise ValueError(
                f"class directory {directory / name} has no images (extensions "
                f"{', '.join(IMG_EXTENSIONS)}); expected {_LAYOUT}"
            )
        for e in found:
            st = e.stat()
            stats.append((st.st_size, st.st_mtime_ns))
        files += [f"{name}/{e.name}" for e in found]
        labels += [label] * len(found)
    if limit is not None:  # round-robin over classes, then back to class order
        keep = first_per_class(torch.tensor(labels), limit).tolist()
        files, labels, stats = [files[i] for i in keep], [labels[i] for i in keep], [stats[i] for i in keep]
    return classes, files, labels, stats


def _resolves(entry: os.DirEntry, test) -> bool:
    """``entry.is_dir()`` or ``entry.is_file()`` (``test``), with a symbolic link loop named."""
    try:
        return test()
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise InputError(
                f"{entry.path} is a symbolic link loop (it leads back to itself)",
                hint="remove or repair the link, then load the data again",
            ) from None
        raise


def _fingerprint(directory: Path, files: list[str], stats: list[tuple[int, int]], options: str) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION}\0{directory.resolve()}\0{options}\0".encode())
    h.update(
        "\n".join(f"{f}\0{size}\0{mtime}" for f, (size, mtime) in zip(files, stats, strict=True)).encode()
    )
    return h.hexdigest()[:24]


def _decode(path: Path, size: int | None, mode: str) -> np.ndarray:
    with Image.open(path) as img:
        img = img.convert(mode)
        if size is not None and img.size != (size, size):
            img = TF.center_crop(TF.resize(img, size), size)
        arr = np.asarray(img)
    return arr if arr.ndim == 3 else arr[:, :, None]


def _decode_chunk(args) -> tuple[int, np.ndarray, list[tuple[int, str]]]:
    """Decode ``paths`` into one (n, H, W, C) array; failures are returned as ``(index, message)``."""
    start, paths, shape, size, mode = args
    out = np.zeros((len(paths), *shape), dtype=np.uint8)
    errors = []
    for i, p in enumerate(paths):
        try:
            arr = _decode(p, size, mode)
        except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError... for bad files
            errors.append((i, f"{type(e).__name__}: {e}"))
            continue
        if arr.shape != shape:
            errors.append((i, f"SizeMismatch: {arr.shape[1]}x{arr.shape[0]}, expected {shape[1]}x{shape[0]}"))
            continue
        out[i] = arr
    return start, out, errors


def _decode_all(files: list[Path], size: int | None, mode: str, workers: int, progress: bool, desc: str):
    """Decode every file; returns the (N, H, W, C) array and a dict {index: error message}."""
    shape = None
    for p in files:  # the first readable image fixes H, W, C
        try:
            shape = _decode(p, size, mode).shape
            break
        except Exception:
            continue
    if shape is None:
        shape = (1, 1, 1)  # every file is bad; let the chunks report them
    h, w, c = shape
    check_memory(  # the decoded array, and the tensor made from it
        2 * len(files) * h * w * c,
        f"holding {len(files)} decoded {w}x{h} images of {files[0].parent.parent}",
        hint="use fewer images (--limit-train) or smaller ones (--image-size)",
    )
    chunk = 256
    jobs = [(s, files[s : s + chunk], shape, size, mode) for s in range(0, len(files), chunk)]
    out = np.zeros((len(files), *shape), dtype=np.uint8)
    errors: dict[int, str] = {}
    bar = start_progress(len(files), desc, "img", enabled=progress)
    parallel = workers > 1 and len(jobs) > 1
    # fork: workers only run Pillow and NumPy, and start without re-importing torch.
    ctx = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
    with (
        concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) if parallel else nullcontext() as pool
    ):
        for start, arr, errs in (pool.map if parallel else map)(_decode_chunk, jobs):
            out[start : start + len(arr)] = arr
            errors.update({start + i: m for i, m in errs})
            bar.update(len(arr))
    bar.close()
    return out, errors


def _default_workers() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, 8))


def load_image_folder(
    root: str | Path,
    split: str | None = None,
    *,
    size: int | None = None,
    mode: str = "RGB",
    limit: int | None = None,
    skip_corrupt: bool = False,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    workers: int | None = None,
    progress: bool = True,
    max_side: int = 128,
    classes: list[str] | None = None,
) -> ImageTensors:
    """Load an ImageFolder tree of small images as one ``uint8`` ``(N, C, H, W)`` tensor.

    Args:
        root: the tree's root; images are read from ``root/split`` (or ``root`` when ``split`` is None).
        split: sub-directory such as "train" or "test".
        size: resize each image to ``size x size`` like torchvision's ``Resize(size)`` then
            ``CenterCrop(size)``. Without it every image must have the same size.
        mode: Pillow mode, "RGB" (3 channels) or "L" (1 channel).
        limit: use only the first ``limit`` images, spread over all classes (quick runs, tests).
        skip_corrupt: leave out files Pillow cannot decode and list them in ``.skipped``, instead of
            raising :class:`CorruptImageError`.
        cache_dir: where decoded tensors are kept; default :func:`default_cache_dir`.
        use_cache: False decodes without reading or writing the cache.
        workers: decoding processes (default: the usable cores, at most 8).
        max_side: refuse images larger than this (hold big images in memory? stream them instead).
        classes: the class names this split must have (the training set's ``classes``, when loading
            its test split): a tree with other class directories is refused instead of mislabelled.
    """
    root = Path(root).expanduser()
    directory = root / split if split is not None else root
    classes, rel, labels, stats = _scan(directory, limit, classes)
    options = f"size={size},mode={mode},limit={limit}"
    key = _fingerprint(directory, rel, stats, options)
    # The format version is part of the name, so that programs running an older cnnarch leave
    # this file alone (they only replace files of their own version).
    tag = (
        f"{root.resolve().name}-{split or 'all'}-{mode}-v{CACHE_VERSION}"
        + (f"-s{size}" if size else "")
        + (f"-n{limit}" if limit is not None else "")
    )
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", tag)
    cache_file = Path(cache_dir or default_cache_dir()) / "folders" / f"{name}-{key}.pt"

    if use_cache and cache_file.is_file():
        try:
            blob = torch.load(cache_file, weights_only=True)
        except Exception:  # unreadable (e.g. written by another version): rebuild below
            blob = None
        if blob is not None and blob.get("key") == key:
            paths, skipped = _split_lines(blob["paths"]), _split_lines(blob["skipped"])
            data = ImageTensors(
                blob["images"], blob["labels"], blob["classes"], paths, skipped, str(directory)
            )
            if data.skipped and not skip_corrupt:
                raise _corrupt_error(directory, data.skipped, "skipped when the cache was built")
            return data

    files = [directory / f for f in rel]
    arr, errors = _decode_all(
        files, size, mode, workers or _default_workers(), progress, f"decoding {directory}"
    )
    sizes = [i for i, m in errors.items() if m.startswith("SizeMismatch")]
    if sizes:
        i = sizes[0]
        raise ValueError(
            f"{files[i]} is {errors[i].split(': ', 1)[1]}: images in {directory} differ in size "
            f"({len(sizes)} of {len(files)} differ); pass size=N (--image-size N) to resize them all"
        )
    h, w = arr.shape[1:3]
    if max(h, w) > max_side:
        raise ValueError(
            f"images in {directory} are {w}x{h}, larger than max_side={max_side}: holding them in "
            "memory would not fit; stream them with cnnarch.data.StreamLoader, or pass size=N "
            "(--image-size N)"
        )
    bad = sorted(errors)
    if bad and not skip_corrupt:
        raise _corrupt_error(directory, [rel[i] for i in bad], errors[bad[0]])
    keep = np.ones(len(files), dtype=bool)
    keep[bad] = False
    images = torch.from_numpy(arr[keep]).permute(0, 3, 1, 2).contiguous()
    label_t = torch.tensor(labels, dtype=torch.int64)[torch.from_numpy(keep)]
    paths = [p for p, k in zip(rel, keep, strict=True) if k]
    skipped = [rel[i] for i in bad]
    if use_cache:
        blob = {
            "key": key,
            "images": images,
            "labels": label_t,
            "classes": classes,
            # one string, not 50,000: weights_only unpickling is slow per object
            "paths": "\n".join(paths),
            "skipped": "\n".join(skipped),
        }
        try:
            atomic_torch_save(blob, cache_file)
            for old in cache_file.parent.glob(f"{name}-*.pt"):  # stale versions of the same tree
                if old != cache_file and re.fullmatch(re.escape(name) + r"-[0-9a-f]{24}\.pt", old.name):
                    old.unlink(missing_ok=True)
        except OSError:  # a read-only or full cache: the decoded images in memory serve this run
            print(
                f"note: the cache {cache_file.parent} cannot be written; {directory} was decoded in memory "
                "and will be decoded again next time (set $CNNARCH_CACHE to a writable directory)",
                file=sys.stderr,
            )
    return ImageTensors(images, label_t, classes, paths, skipped, str(directory))


def _split_lines(text: str) -> list[str]:
    return text.split("\n") if text else []


def _corrupt_error(directory: Path, bad: list[str], reason: str) -> CorruptImageError:
    more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
    return CorruptImageError(
        f"cannot decode image {directory / bad[0]} ({reason}){more}; delete or replace it, "
        "or pass skip_corrupt=True (--skip-corrupt) to leave such files out",
        directory / bad[0],
    )
