"""CIFAR-10, CIFAR-100, MNIST and Fashion-MNIST as :class:`ImageTensors`, found or downloaded.

Where a dataset is looked for, in order (``root``, ``$CNNARCH_DATA``, the project's ``shared/data``, the
cache, a download checked against the published MD5), and the forms it is read in (CIFAR's official
python batches, their ``.tar.gz``, an ImageFolder tree with ``train/`` and ``test/``; MNIST's idx files)
are written out in docs/data.md. :func:`find_dataset` tells where a dataset is without reading it, so
that a run can record the data it actually used.

The official CIFAR batches are Python pickles; they are read with an unpickler that only builds
dicts, lists, strings, numbers and NumPy arrays, so a doctored file cannot run code.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cnnarch.data.base import ImageTensors, default_cache_dir, first_per_class
from cnnarch.data.download import DownloadError, download, extract
from cnnarch.data.folder import load_image_folder

SPLITS = ("train", "test")


class DatasetNotFoundError(FileNotFoundError):
    """The dataset is in none of the places looked at and could not be downloaded."""


@dataclass(frozen=True)
class ArchiveSpec:
    """Where an official dataset lives and what it looks like once extracted."""

    name: str
    url: str
    md5: str
    folder: str  # the directory the archive extracts to
    aliases: tuple[str, ...]  # other directory names it may be found under (ImageFolder copies)


CIFAR10 = ArchiveSpec(
    "CIFAR-10",
    "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "c58f30108f718f92721af3b95e74349a",
    "cifar-10-batches-py",
    ("cifar10-jpeg", "cifar10", "cifar-10", "CIFAR10"),
)
CIFAR100 = ArchiveSpec(
    "CIFAR-100",
    "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    "eb9058c3a382ffc7106e4002c42a8d85",
    "cifar-100-python",
    ("cifar100-jpeg", "cifar100", "cifar-100", "CIFAR100"),
)

MNIST_FILES = {  # (images, labels) per split: torchvision's names and MD5s of the gzipped files
    "train": (
        ("train-images-idx3-ubyte", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        ("train-labels-idx1-ubyte", "d53e105ee54ea40749a09fcbcd1e9432"),
    ),
    "test": (
        ("t10k-images-idx3-ubyte", "9fb629c4189551a2d022fa330f9573f3"),
        ("t10k-labels-idx1-ubyte", "ec29112dd5afa0611ce80d1b7f02629c"),
    ),
}
FASHION_FILES = {
    "train": (
        ("train-images-idx3-ubyte", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        ("train-labels-idx1-ubyte", "25c81989df183df01b3e8a0aad5dffbe"),
    ),
    "test": (
        ("t10k-images-idx3-ubyte", "bef4ecab320f06d8554ea6380940ec79"),
        ("t10k-labels-idx1-ubyte", "bb300cfdad3c16e7a12a480ee83cd310"),
    ),
}
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def project_data_dirs() -> list[Path]:
    """The project's data directories: ``$CNNARCH_PROJECT_DATA`` when set, else every existing
    ``shared/data`` in the current directory and the directories above it, then above this package."""
    if "CNNARCH_PROJECT_DATA" in os.environ:
        return [Path(p).expanduser() for p in os.environ["CNNARCH_PROJECT_DATA"].split(os.pathsep) if p]
    cwd, here = Path.cwd(), Path(__file__).resolve().parent
    found = []
    for base in (cwd, *cwd.parents, *here.parents):
        d = base / "shared" / "data"
        if d not in found and d.is_dir():
            found.append(d)
    return found


def _search_dirs(root, cache_dir) -> list[tuple[str, Path]]:
    """The places to look, labelled for messages: --data, $CNNARCH_DATA, the project's data, the cache."""
    if root is not None:
        return [("--data", Path(root).expanduser())]
    places = []
    if os.environ.get("CNNARCH_DATA"):
        places.append(("$CNNARCH_DATA", Path(os.environ["CNNARCH_DATA"]).expanduser()))
    places += [("project", d) for d in project_data_dirs()]
    places.append(("cache", Path(cache_dir or default_cache_dir()) / "datasets"))
    return places


def _not_found(what: str, places, expected: str, download_error: Exception | None, url: str | None):
    looked = ", ".join(f"{label} {path}" for label, path in places)
    msg = f"{what} not found (looked in {looked}); expected {expected}."
    if download_error is not None:
        msg += f" Downloading failed: {download_error}. Offline? Fetch {url} elsewhere and put it in one of"
        msg += " those places, or pass --data DIR / set CNNARCH_DATA"
    elif url is not None:
        msg += f" Pass download=True to fetch it from {url}, or pass --data DIR / set CNNARCH_DATA"
    return DatasetNotFoundError(msg)


# ---------------------------------------------------------------------------------------------
# CIFAR


class _SafeUnpickler(pickle.Unpickler):
    """Builds only what the official CIFAR batches contain: builtins and NumPy arrays."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3 (harmless: it only encodes)
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch file")


def _unpickle(data: bytes) -> dict:
    blob = _SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in blob.items()}


def _cifar_batches(spec: ArchiveSpec, split: str) -> tuple[list[str], str]:
    if spec is CIFAR10:
        names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        return names, "batches.meta"
    return [split], "meta"


def _read_cifar(directory: Path, spec: ArchiveSpec, split: str, label_key: str) -> ImageTensors:
    """Build the split from the official batch files in ``directory``."""
    names, meta_name = _cifar_batches(spec, split)
    meta = _unpickle((directory / meta_name).read_bytes())
    classes_key = {"labels": "label_names", "fine_labels": "fine_label_names"}.get(
        label_key, "coarse_label_names"
    )
    classes = [c.decode() if isinstance(c, bytes) else c for c in meta[classes_key]]
    images, labels = [], []
    for name in names:
        batch = _unpickle((directory / name).read_bytes())
        images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels += list(batch[label_key])
    images = torch.from_numpy(np.concatenate(images))
    return ImageTensors(images, torch.tensor(labels, dtype=torch.int64), classes, source=str(directory))


def _find_cifar(spec: ArchiveSpec, base: Path):
    """Recognize a CIFAR copy at ``base``: ("python", dir), ("archive", file), ("folder", dir) or None."""
    names, meta = _cifar_batches(spec, "test")
    for d in (base, base / spec.folder):
        if (d / meta).is_file() and (d / names[0]).is_file():
            return "python", d
    archive = base / Path(spec.url).name
    if archive.is_file():
        return "archive", archive
    for d in (base, *(base / a for a in spec.aliases)):
        if (d / "train").is_dir() and (d / "test").is_dir():
            return "folder", d
    return None


def _cifar(spec, root, split, label_key, download_ok, cache_dir, url, md5, **folder_kw) -> ImageTensors:
    _check_split(split)
    places = _search_dirs(root, cache_dir)
    found = next((hit for _, base in places if (hit := _find_cifar(spec, base))), None)
    error = None
    if found is None and root is None and download_ok:
        target = Path(cache_dir or default_cache_dir()) / "datasets"
        try:
            archive = download(url or spec.url, target / Path(spec.url).name, md5 or spec.md5)
            found = ("archive", archive)
        except DownloadError as e:
            error = e
    if found is None:
        expected = (
            f"{spec.folder}/ (official python version), {Path(spec.url).name}, or an ImageFolder tree "
            f"<dir>/train/<class>/*.jpg + <dir>/test/... (possibly in a sub-directory named "
            f"{' or '.join(spec.aliases)})"
        )
        raise _not_found(spec.name, places, expected, error, url or spec.url if root is None else None)
    kind, path = found
    if kind == "folder":
        if label_key == "coarse_labels":
            raise ValueError(f"{path} is an ImageFolder tree: it has no coarse labels; use labels='fine'")
        data = load_image_folder(path, split, cache_dir=cache_dir, **folder_kw)
        n_classes = 10 if spec is CIFAR10 else 100
        if len(data.classes) != n_classes or data.image_shape != (3, 32, 32):
            raise ValueError(
                f"{path / split} holds {len(data.classes)} classes of {data.image_shape} images; {spec.name} "
                f"has {n_classes} classes of 32x32 RGB images. Pass the right directory as --data"
            )
        return data
    if kind == "archive":
        # Extract once into the cache (the archive's own directory may be read-only).
        into = Path(cache_dir or default_cache_dir()) / "datasets"
        if (_find_cifar(spec, into) or ("",))[0] != "python":
            try:
                extract(path, into)
            except tarfile.TarError as e:
                raise ValueError(
                    f"{path} is not a readable {spec.name} archive ({e}); delete it and retry"
                ) from e
        path = into / spec.folder
    data = _read_cifar(path, spec, split, label_key)
    if folder_kw.get("limit") is not None:
        data = data.subset(first_per_class(data.labels, folder_kw["limit"]))
    return data


def cifar10(
    root: str | Path | None = None,
    split: str = "train",
    *,
    download: bool = True,
    cache_dir: str | Path | None = None,
    limit: int | None = None,
    url: str | None = None,
    md5: str | None = None,
    **folder_kw,
) -> ImageTensors:
    """CIFAR-10 ``split`` ("train": 50,000 images, "test": 10,000) as ``uint8 (N, 3, 32, 32)``.

    ``root`` may be the official ``cifar-10-batches-py`` directory or its parent, the directory
    holding ``cifar-10-python.tar.gz``, or an ImageFolder tree with ``train/`` and ``test/`` (the
    JPEG copy). Without ``root``: ``$CNNARCH_DATA``, then the cache, then a download (checked
    against the official MD5; ``url``/``md5`` override the source, for mirrors and tests).
    ``limit`` keeps the first ``limit`` images round-robin over classes. Other keyword arguments
    (``skip_corrupt``, ``workers``, ``progress``) go to :func:`load_image_folder` for JPEG trees.
    """
    return _cifar(CIFAR10, root, split, "labels", download, cache_dir, url, md5, limit=limit, **folder_kw)


def cifar100(
    root: str | Path | None = None,
    split: str = "train",
    *,
    labels: str = "fine",
    download: bool = True,
    cache_dir: str | Path | None = None,
    limit: int | None = None,
    url: str | None = None,
    md5: str | None = None,
    **folder_kw,
) -> ImageTensors:
    """CIFAR-100 ``split`` with its 100 ``labels="fine"`` classes or 20 ``"coarse"`` superclasses.
    Found and downloaded like :func:`cifar10` (``cifar-100-python/``, ``cifar-100-python.tar.gz``)."""
    if labels not in ("fine", "coarse"):
        raise ValueError(f"labels must be 'fine' or 'coarse', got {labels!r}")
    key = f"{labels}_labels"
    return _cifar(CIFAR100, root, split, key, download, cache_dir, url, md5, limit=limit, **folder_kw)


# ---------------------------------------------------------------------------------------------
# MNIST and Fashion-MNIST (idx files)

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an idx file (LeCun's MNIST format), gzipped (``.gz``) or not, as a NumPy array."""
    path = Path(path)
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an idx file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(shape)) * dtype.itemsize:
        raise ValueError(
            f"{path} is truncated or padded: header says {shape}, data has {len(raw) - offset} bytes"
        )
    return np.frombuffer(raw, dtype=dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))


def _find_idx(base: Path, stems: tuple[str, ...], subdirs: tuple[str, ...]) -> list[Path] | None:
    for d in (base, *(base / s for s in subdirs)):
        found = []
        for stem in stems:
            hit = next((d / (stem + ext) for ext in ("", ".gz") if (d / (stem + ext)).is_file()), None)
            found.append(hit)
        if all(found):
            return found
    return None


def _idx_dataset(name, files, mirror, classes, subdirs, root, split, download_ok, cache_dir, url, limit):
    _check_split(split)
    stems = tuple(stem for stem, _ in files[split])
    places = _search_dirs(root, cache_dir)
    paths = next((p for _, base in places if (p := _find_idx(base, stems, subdirs))), None)
    error = None
    if paths is None and root is None and download_ok:
        target = Path(cache_dir or default_cache_dir()) / "datasets" / subdirs[0]
        try:
            paths = [
                download((url or mirror) + f"{stem}.gz", target / f"{stem}.gz", md5)
                for stem, md5 in files[split]
            ]
        except DownloadError as e:
            error = e
    if paths is None:
        expected = (
            f"{' and '.join(stems)} (idx files, optionally .gz) in the directory or in {', '.join(subdirs)}"
        )
        raise _not_found(name, places, expected, error, (url or mirror) if root is None else None)
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.shape != (len(images),):
        raise ValueError(
            f"{paths[0]} and {paths[1]} do not match: images {images.shape}, labels {labels.shape}"
        )
    data = ImageTensors(
        torch.from_numpy(images.astype(np.uint8)).unsqueeze(1),
        torch.from_numpy(labels.astype(np.int64)),
        list(classes),
        source=str(paths[0].parent),
    )
    return data if limit is None else data.subset(first_per_class(data.labels, limit))


def mnist(
    root: str | Path | None = None,
    split: str = "train",
    *,
    download: bool = True,
    cache_dir: str | Path | None = None,
    limit: int | None = None,
    url: str | None = None,
) -> ImageTensors:
    """MNIST ``split`` (60,000 / 10,000 digits) as ``uint8 (N, 1, 28, 28)``, found like :func:`cifar10`
    (idx files in the directory, or in ``mnist/`` or torchvision's ``MNIST/raw/``); ``url`` is a
    mirror's base URL."""
    spec = ("MNIST", MNIST_FILES, MNIST_URL, [str(i) for i in range(10)], _IDX_SPECS["mnist"][1])
    return _idx_dataset(*spec, root, split, download, cache_dir, url, limit)


def fashion_mnist(
    root: str | Path | None = None,
    split: str = "train",
    *,
    download: bool = True,
    cache_dir: str | Path | None = None,
    limit: int | None = None,
    url: str | None = None,
) -> ImageTensors:
    """Fashion-MNIST ``split`` as ``uint8 (N, 1, 28, 28)`` (idx files in the directory, or in
    ``fashion-mnist/`` or torchvision's ``FashionMNIST/raw/``)."""
    spec = ("Fashion-MNIST", FASHION_FILES, FASHION_URL, FASHION_CLASSES, _IDX_SPECS["fashion-mnist"][1])
    return _idx_dataset(*spec, root, split, download, cache_dir, url, limit)


DATASETS = {"cifar10": cifar10, "cifar100": cifar100, "mnist": mnist, "fashion-mnist": fashion_mnist}


_ALIASES = {
    "cifar-10": "cifar10",
    "cifar-100": "cifar100",
    "fashionmnist": "fashion-mnist",
    "imagefolder": "folder",
}


_IDX_SPECS = {  # idx files and the sub-directories they may be in
    "mnist": (MNIST_FILES, ("mnist", "MNIST/raw")),
    "fashion-mnist": (FASHION_FILES, ("fashion-mnist", "FashionMNIST/raw")),
}


def find_dataset(
    name: str, root: str | Path | None = None, cache_dir: str | Path | None = None
) -> Path | None:
    """The directory that holds dataset ``name`` by the rule above (``root``, ``$CNNARCH_DATA``, the
    project's data, the cache), or None when it would have to be downloaded. Reads nothing but names;
    the directory found, given back as ``root``, loads the same data."""
    key = _ALIASES.get(name.lower().replace("_", "-"), name.lower().replace("_", "-"))
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    for _, base in _search_dirs(root, cache_dir):
        if key in _IDX_SPECS:
            files, subdirs = _IDX_SPECS[key]
            paths = _find_idx(base, tuple(stem for stem, _ in files["test"]), subdirs)
            if paths:
                return paths[0].parent
        elif hit := _find_cifar(CIFAR10 if key == "cifar10" else CIFAR100, base):
            kind, path = hit
            return path.parent if kind == "archive" else path
    return None


def load_dataset(name: str, split: str = "train", root: str | Path | None = None, **kw) -> ImageTensors:
    """One entry for the trainer: ``name`` is "cifar10", "cifar100", "mnist", "fashion-mnist"
    (found or downloaded as above) or "folder" (an ImageFolder tree at ``root``)."""
    key = name.lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key == "folder":
        if root is None:
            raise ValueError("dataset 'folder' needs root (--data DIR) holding <split>/<class>/<image>")
        kw.pop("download", None)
        return load_image_folder(root, split, **kw)
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join([*DATASETS, 'folder'])}")
    return DATASETS[key](root, split, **kw)
