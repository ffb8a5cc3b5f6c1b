"""CIFAR-10 for the assignment, with NumPy and Pillow only (the workspace's ``cs231n/data_utils.py``).

The workspace copies this file as it is, so that a student's copy of the assignment needs no cnnarch
to load its data. ``root`` may be the official ``cifar-10-batches-py`` folder (the one the original
assignment's ``get_datasets.sh`` fetches), a folder holding it, or an ImageFolder copy with
``train/<class>/*.jpg`` and ``test/<class>/*.jpg`` (such as ``cifar10-jpeg``). Without ``root``, the
first of these places that holds one: ``$CNNARCH_DATA``; ``datasets/`` beside this file; a
``shared/data`` folder in the current directory or one above it; cnnarch's cache
(``$CNNARCH_CACHE/datasets``, default ``~/.cache/cnnarch/datasets``); else the official archive is
downloaded into ``datasets/`` beside this file (170 MB).

An ImageFolder copy lists its classes and files sorted by name, so its images come sorted by class;
``limit`` takes the first images of each class in turn (round-robin), so that a small subset still
holds every class. Decoded JPEG copies are kept in ``$CNNARCH_CACHE/assignment`` as ``.npz``.
"""

import hashlib
import os
import pickle
import tarfile
import urllib.request
from pathlib import Path

import numpy as np

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
BATCHES = "cifar-10-batches-py"
HERE = Path(__file__).resolve().parent
__all__ = ["get_CIFAR10_data", "load_CIFAR10", "load_cifar10"]


def _cache_dir() -> Path:
    return Path(os.environ.get("CNNARCH_CACHE") or Path.home() / ".cache" / "cnnarch")


def _holds(folder: Path):
    """``("batches", path)`` or ``("folder", path)`` when ``folder`` is (or holds) a CIFAR-10 copy."""
    for candidate in (folder, folder / BATCHES, folder / "cifar10-jpeg", folder / "cifar10"):
        if (candidate / "data_batch_1").is_file() and (candidate / "test_batch").is_file():
            return "batches", candidate
        if (candidate / "train").is_dir() and (candidate / "test").is_dir():
            return "folder", candidate
    return None


def _places():
    if os.environ.get("CNNARCH_DATA"):
        yield Path(os.environ["CNNARCH_DATA"])
    yield HERE / "datasets"
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        yield folder / "shared" / "data"
    yield _cache_dir() / "datasets"


def find_cifar10(root=None):
    """``(kind, path)`` of the CIFAR-10 copy to read (see the module's docstring for the order)."""
    if root is not None:
        found = _holds(Path(root))
        if found is None:
            raise FileNotFoundError(
                f"{root} holds no CIFAR-10: expected the {BATCHES} folder (data_batch_1..5, test_batch) "
                "or an ImageFolder copy with train/<class>/*.jpg and test/<class>/*.jpg"
            )
        return found
    for place in _places():
        if place.is_dir() and (found := _holds(place)):
            return found
    return "batches", download(HERE / "datasets")


def download(into) -> Path:
    """Download and unpack the official archive into ``into``; returns the batches' folder."""
    into = Path(into)
    into.mkdir(parents=True, exist_ok=True)
    archive = into / Path(URL).name
    if not archive.is_file():
        print(f"downloading CIFAR-10 (170 MB) from {URL} into {into}")
        partial = archive.with_suffix(".part")
        urllib.request.urlretrieve(URL, partial)  # noqa: S310 (a fixed https URL)
        digest = hashlib.md5(partial.read_bytes()).hexdigest()  # noqa: S324 (the archive's published MD5)
        if digest != MD5:
            partial.unlink()
            raise OSError(f"the download of {URL} is damaged (MD5 {digest}, expected {MD5}); try again")
        partial.rename(archive)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / BATCHES


def _first_per_class(labels, limit):
    """Indices of the first ``limit`` images taken round-robin over the classes, in stored order."""
    labels = np.asarray(labels)
    rank = np.zeros(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        where = labels == c
        rank[where] = np.arange(int(where.sum()))
    order = np.argsort(rank * (int(labels.max()) + 1) + labels, kind="stable")[:limit]
    return np.sort(order)


class _BatchUnpickler(pickle.Unpickler):
    """Builds only what the official batches hold (builtins and NumPy arrays): a pickle can run any
    code it names, and a downloaded file must not."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR-10 batch file")


def _read_batches(folder: Path, split: str):
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    images, labels = [], []
    for name in names:
        with open(folder / name, "rb") as f:
            batch = _BatchUnpickler(f, encoding="bytes").load()
        batch = {(k.decode() if isinstance(k, bytes) else k): v for k, v in batch.items()}
        images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch["labels"], dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def _scan_folder(folder: Path, split: str):
    directory = folder / split
    classes = sorted(e.name for e in os.scandir(directory) if e.is_dir() and not e.name.startswith("."))
    files, labels = [], []
    for label, name in enumerate(classes):
        found = sorted(e.name for e in os.scandir(directory / name) if e.is_file())
        files += [directory / name / f for f in found]
        labels += [label] * len(found)
    return files, np.asarray(labels, dtype=np.int64)


def _decode(files):
    from PIL import Image

    out = np.empty((len(files), 3, 32, 32), dtype=np.uint8)
    for i, path in enumerate(files):
        with Image.open(path) as image:
            out[i] = np.asarray(image.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1)
    return out


def load_cifar10(root=None, split="train", limit=None, progress=True):
    """``(X, y)``: uint8 images (N, 3, 32, 32) and int64 labels of ``split`` ("train", "test").

    ``limit`` keeps only that many images, the first of each class in turn; ``progress`` prints a
    line before decoding a JPEG copy (which is then cached)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    kind, path = find_cifar10(root)
    if kind == "batches":
        X, y = _read_batches(path, split)
        keep = _first_per_class(y, limit) if limit is not None else slice(None)
        return X[keep], y[keep]
    files, y = _scan_folder(path, split)
    if limit is not None:
        keep = _first_per_class(y, limit)
        files, y = [files[i] for i in keep], y[keep]
    stamp = f"{path.resolve()}|{split}|{len(files)}|{max(os.stat(f).st_mtime_ns for f in files)}"
    cached = (
        _cache_dir() / "assignment" / f"cifar10-{split}-{hashlib.sha1(stamp.encode()).hexdigest()[:16]}.npz"
    )
    if cached.is_file():
        with np.load(cached) as saved:
            return saved["X"], saved["y"]
    if progress:
        print(f"decoding {len(files):,} {split} images of {path} (once; then cached in {cached.parent})")
    X = _decode(files)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".part.npz")
        np.savez(partial, X=X, y=y)
        partial.replace(cached)
    except OSError:  # no writable cache: decode again next time
        pass
    return X, y


def get_CIFAR10_data(  # noqa: N802 (the assignment's name)
    num_training=49000, num_validation=1000, num_test=1000, subtract_mean=True, root=None, seed=0
):
    """The assignment's data dict: 'X_train', 'y_train', 'X_val', 'y_val', 'X_test', 'y_test'.

    Images (N, 3, 32, 32) float32 in 0..255, minus the mean training image when ``subtract_mean``.
    Training and validation images are disjoint parts of CIFAR-10's training set, shuffled with
    ``seed`` (an ImageFolder copy comes sorted by class); test images come from its test set.
    """
    X, y = load_cifar10(root, "train")
    X_test, y_test = load_cifar10(root, "test")
    if num_training + num_validation > len(X) or num_test > len(X_test):
        raise ValueError(
            f"asked for {num_training} + {num_validation} training and {num_test} test images; "
            f"there are {len(X)} and {len(X_test)}"
        )
    rng = np.random.RandomState(seed)
    order = rng.permutation(len(X))[: num_training + num_validation]
    test = np.sort(rng.permutation(len(X_test))[:num_test])
    data = {
        "X_train": X[order[:num_training]].astype(np.float32),
        "y_train": y[order[:num_training]],
        "X_val": X[order[num_training:]].astype(np.float32),
        "y_val": y[order[num_training:]],
        "X_test": X_test[test].astype(np.float32),
        "y_test": y_test[test],
    }
    if subtract_mean:
        mean_image = data["X_train"].mean(axis=0)
        for k in ("X_train", "X_val", "X_test"):
            data[k] -= mean_image
    return data


def load_CIFAR10(ROOT=None):  # noqa: N802, N803 (the assignment's names)
    """``Xtr, Ytr, Xte, Yte``: the 50,000 training and 10,000 test images, (N, 32, 32, 3) float64."""
    out = []
    for split in ("train", "test"):
        X, y = load_cifar10(ROOT, split)
        out += [X.transpose(0, 2, 3, 1).astype(np.float64), y]
    return tuple(out)
